"""Route modules, one per concern; app.create_app includes each module's `router`."""
