"""Node types. Importing this package fills the engine's registry."""

from tailwinds.nodes import chains, local, memory, models, prompts, retrieval

__all__ = ["chains", "local", "memory", "models", "prompts", "retrieval"]
