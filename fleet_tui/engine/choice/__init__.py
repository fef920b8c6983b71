"""Which agent and model run a task: routing, reputation, the credit budget, operator
preferences, and the report of what routing does with each profile."""
