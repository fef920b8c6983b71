"""The record of task state: the ledger (task_ledger.py), the one writer of a task's row and
of the conductor's audit rows; the lease a write is made under; the trace ids carried through
a request, its spawn, the monitor and retries."""
