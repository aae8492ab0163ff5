"""Node types. Importing this package fills the engine's registry."""

from tailwinds.nodes import chains, memory, models, prompts

__all__ = ["chains", "memory", "models", "prompts"]
