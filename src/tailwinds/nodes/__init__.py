"""Node types. Importing this package fills the engine's registry."""

from tailwinds.nodes import agents, chains, local, mcp, memory, models, prompts, retrieval, tools

__all__ = ["agents", "chains", "local", "mcp", "memory", "models", "prompts", "retrieval", "tools"]
