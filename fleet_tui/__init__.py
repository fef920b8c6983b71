"""fleet_tui: a control room for a fleet of AI coding agents."""

__version__ = "0.1.0"
