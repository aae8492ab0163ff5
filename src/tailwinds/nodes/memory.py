"""Memory nodes: which past turns of a conversation a chain sees."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from tailwinds.engine.registry import Node, NodeInputs, register_node
from tailwinds.messages import ChatMessage


class MemoryNode(Node):
    category: ClassVar[str] = "memory"

    def turns(self) -> int:
        raise NotImplementedError

    def window(self, history: list[ChatMessage]) -> list[ChatMessage]:
        return history[-2 * self.turns() :]


@register_node
class BufferWindowMemory(MemoryNode):
    """The last `k` turns (a question and its answer each) stored for the session."""

    type_name: ClassVar[str] = "bufferWindowMemory"
    label: ClassVar[str] = "Buffer window memory"

    class Inputs(NodeInputs):
        k: int = Field(5, ge=1, le=1000)

    inputs: Inputs

    def turns(self) -> int:
        return self.inputs.k
