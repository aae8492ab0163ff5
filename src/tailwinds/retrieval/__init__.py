"""Splitting documents and ranking chunks: pure computation, no I/O."""
