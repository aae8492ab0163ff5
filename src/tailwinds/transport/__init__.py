"""Carrying a run's events from where it runs to the client: frames numbered for resumption,
an in-memory log per run (local mode), Redis Streams between processes (queue mode)."""
