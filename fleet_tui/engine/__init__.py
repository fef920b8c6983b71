"""The conductor and everything it drives: saga, governor, monitor, routing, enrichment, review."""
