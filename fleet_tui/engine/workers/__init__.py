"""Workers beside a conductor: the outbox relay, the notification worker, the command
worker and the observer's command client."""
