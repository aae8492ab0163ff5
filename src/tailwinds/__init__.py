"""Tailwinds: run LLM chatflows and stream their answers as server-sent events."""

__version__ = "0.1.0"
