"""The Textual face: the control room. Imports engine, domain and config only."""
