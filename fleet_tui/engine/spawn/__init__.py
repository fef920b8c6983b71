"""Admission and start of an agent: the governor, the spawn queue, the spawner saga, the
prompt and its enrichment, the agent images."""
