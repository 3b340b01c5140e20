"""User-facing notifications: the in-app inbox, the delivery outbox, live push, email."""
