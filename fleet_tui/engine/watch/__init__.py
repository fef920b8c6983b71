"""The monitor and what it hands on: attention (agents that need a person), CI polls,
the dispatch of a task's state to the event router."""
