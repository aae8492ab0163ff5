"""The node registry: the one place that lists node types, and the base classes nodes
are built from. Node modules register themselves; the app and the worker import
`tailwinds.nodes` once to fill it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    from tailwinds.config import Settings
    from tailwinds.engine.context import RunContext
    from tailwinds.engine.events import Event
    from tailwinds.messages import ToolCall, Usage


class NodeInputs(BaseModel):
    """A node's declared inputs: camelCase in flowData, unknown names refused on save."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


@dataclass(frozen=True, slots=True)
class Port:
    """An input fed by an edge from another node of `category`; with `many`, by any
    number of edges, and the node sees a list."""

    category: str
    required: bool = False
    many: bool = False


class Node:
    type_name: ClassVar[str]  # stored in flowData: never rename
    category: ClassVar[str]  # chatModel, prompt, memory, chain
    label: ClassVar[str]
    Inputs: ClassVar[type[NodeInputs]] = NodeInputs
    ports: ClassVar[dict[str, Port]] = {}

    def __init__(self, node_id: str, inputs: NodeInputs, links: dict[str, Any]) -> None:
        self.node_id = node_id
        self.inputs = inputs
        self.links = links

    def validate(self) -> None:
        """Checks across inputs and links, on save: raise `InvalidRequest`."""

    def check_settings(self, settings: Settings) -> None:
        """Checks against what the operator allows, on save: raise `InvalidRequest`. (The
        settings may change after a save: a node that must hold to them when it runs
        calls this again then.)"""


class AnsweringNode(Node):
    """A node that can end a chatflow: it turns the turn into the answer's stream."""

    def history_turns(self, default_turns: int) -> int:
        """How many past turns of the conversation this node reads."""
        return 0

    async def prepare(self, ctx: RunContext) -> None:
        """Before any stream starts: raise a `RequestError` for what the request lacks or
        what cannot be had now (`RateLimited`), and reserve what the run will need."""

    def answer(self, ctx: RunContext) -> AsyncIterator[str | Usage | ToolCall | Event]:
        """Text pieces, events and the usage. (`ToolCall` is in the type because a chat
        model's stream has it; a model asked without tools yields none.)"""
        raise NotImplementedError


NODE_TYPES: dict[str, type[Node]] = {}

N = TypeVar("N", bound=type[Node])


def register_node(cls: N) -> N:
    if cls.type_name in NODE_TYPES:
        raise ValueError(f"node type {cls.type_name!r} is registered twice")
    NODE_TYPES[cls.type_name] = cls
    return cls


def describe_nodes() -> list[dict[str, Any]]:
    """The registry as the API and the UI palette read it."""
    return [
        {
            "type": cls.type_name,
            "category": cls.category,
            "label": cls.label,
            "answers": issubclass(cls, AnsweringNode),
            "inputs": cls.Inputs.model_json_schema(by_alias=True),
            "ports": {
                name: {"category": port.category, "required": port.required, "many": port.many}
                for name, port in cls.ports.items()
            },
        }
        for cls in NODE_TYPES.values()
    ]
