"""NATS plumbing shared by every service: connection, streams and buckets, the
embedded server, and the stop-on-signal lifecycle."""
