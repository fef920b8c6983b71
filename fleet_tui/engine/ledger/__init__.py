"""The record of task state: the lease a write is made under, and the trace ids carried
through a request, its spawn, the monitor and retries."""
