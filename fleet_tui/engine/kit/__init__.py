"""Task-agnostic parts: saga, circuit breakers (in process and fleet-wide), the periodic
loop, LISTEN, sanitizing, the in-process bus, the shared call budget."""
