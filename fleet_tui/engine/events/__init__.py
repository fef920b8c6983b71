"""The event router: events -> routes -> sequences of steps in waves -> handoffs (section 9),
the adapters steps call, policy administration, the dead-letter queue."""
