"""Scheduled duties beside a conductor (dead letters, health, logs, retention), disk
sweep, metrics, invariants."""
