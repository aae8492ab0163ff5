"""Graph validation and the shape of compiled flows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest

import tailwinds.nodes  # noqa: F401
from tailwinds.engine.compile import compile_flow
from tailwinds.engine.registry import NODE_TYPES, Node, NodeInputs, Port, register_node
from tailwinds.errors import InvalidRequest
from tailwinds.nodes.chains import ConversationChain

MODEL = {"id": "m", "type": "chatOpenAI", "inputs": {"model": "x"}}


@pytest.fixture
def loop_node() -> Iterator[str]:
    @register_node
    class Loop(Node):
        type_name: ClassVar[str] = "testLoop"
        category: ClassVar[str] = "loop"
        label: ClassVar[str] = "loop"
        ports: ClassVar[dict[str, Port]] = {"next": Port("loop")}

        class Inputs(NodeInputs):
            pass

    yield "testLoop"
    del NODE_TYPES["testLoop"]


def test_cycle_is_named(loop_node: str) -> None:
    flow = {
        "nodes": [MODEL, {"id": "a", "type": loop_node}, {"id": "b", "type": loop_node}],
        "edges": [
            {"source": "a", "target": "b", "targetInput": "next"},
            {"source": "b", "target": "a", "targetInput": "next"},
        ],
    }
    with pytest.raises(InvalidRequest, match="cycle through a, b"):
        compile_flow(flow)


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register_node(NODE_TYPES["chatOpenAI"])


def test_duplicate_node_ids() -> None:
    with pytest.raises(InvalidRequest, match="used twice"):
        compile_flow({"nodes": [MODEL, MODEL]})


def test_chain_compiles_with_its_links() -> None:
    flow = compile_flow(
        {
            "nodes": [
                MODEL,
                {
                    "id": "p",
                    "type": "promptTemplate",
                    "inputs": {"template": "Q: {question} {topic}", "variables": {"topic": "x"}},
                },
                {"id": "mem", "type": "bufferWindowMemory", "inputs": {"k": 2}},
                {"id": "c", "type": "conversationChain"},
            ],
            "edges": [
                {"source": "m", "target": "c", "targetInput": "model"},
                {"source": "p", "target": "c", "targetInput": "prompt"},
                {"source": "mem", "target": "c", "targetInput": "memory"},
            ],
        }
    )
    assert isinstance(flow.answer, ConversationChain)
    assert flow.answer.history_turns(10) == 2
    assert flow.answer.model.node_id == "m"
    assert {"temperature", "systemMessage", "k", "template"} <= flow.overridable_inputs()


def test_overrides_are_validated_by_the_node_schema() -> None:
    flow = compile_flow({"nodes": [MODEL]}, {"temperature": 0.5})
    assert flow.answer.inputs.temperature == 0.5  # type: ignore[attr-defined]
    with pytest.raises(InvalidRequest, match=r"overrideConfig\.temperature"):
        compile_flow({"nodes": [MODEL]}, {"temperature": 7})
