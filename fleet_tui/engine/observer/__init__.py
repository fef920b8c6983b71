"""The face-side of a fleet run elsewhere: the observer and the fleet's change feed."""
