"""A chatflow's tool: its name (configured, or made valid from the chatflow's), and its
input schema from the prompts' variables when `vars` may be overridden."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import tailwinds.nodes  # noqa: F401  (fills the node registry)
from tailwinds.engine.compile import compile_flow
from tailwinds.server.mcp.catalog import TOOL_NAME, input_schema, tool_name
from tailwinds.store.chatflows import Chatflow


def chatflow(name: str = "c", mcp_tool: Any = None, allowed: list[str] | None = None) -> Chatflow:
    now = datetime.now(UTC)
    return Chatflow(
        id="0123456789abcdef",
        name=name,
        flow_data={},
        api_key_id=None,
        allowed_overrides=allowed or [],
        allowed_origins=[],
        rate_limit=None,
        resume_grace_s=None,
        version=1,
        created_date=now,
        updated_date=now,
        mcp_tool=mcp_tool,
    )


def prompt_flow(template: str, variables: dict[str, str]) -> Any:
    return compile_flow(
        {
            "nodes": [
                {"id": "m", "type": "chatOpenAI", "inputs": {"model": "x"}},
                {
                    "id": "p",
                    "type": "promptTemplate",
                    "inputs": {"template": template, "variables": variables},
                },
                {"id": "c", "type": "conversationChain", "inputs": {}},
            ],
            "edges": [
                {"source": "m", "target": "c", "targetInput": "model"},
                {"source": "p", "target": "c", "targetInput": "prompt"},
            ],
        }
    )


@pytest.mark.parametrize(
    ("name", "configured", "expected"),
    [
        ("Facts Q&A", None, "Facts_Q_A"),
        ("déjà vu", None, "d_j_vu"),
        ("!!!", None, "chatflow_01234567"),
        ("x" * 300, None, "x" * 64),
        ("anything", {"exposed": True, "name": "ask.it"}, "ask.it"),
    ],
)
def test_tool_name_is_always_valid(name: str, configured: Any, expected: str) -> None:
    made = tool_name(chatflow(name, configured))
    assert made == expected and TOOL_NAME.fullmatch(made)


def test_schema_has_vars_only_when_allowed_and_required_without_default() -> None:
    flow = prompt_flow("{persona} in {place} says {question} after {history}", {"place": "Rome"})
    plain = input_schema(chatflow(), flow)
    assert set(plain["properties"]) == {"question", "chatId"}
    assert plain["required"] == ["question"] and plain["additionalProperties"] is False

    schema = input_schema(chatflow(allowed=["vars"]), flow)
    variables = schema["properties"]["vars"]
    assert set(variables["properties"]) == {"persona", "place"}  # not question, history
    assert variables["required"] == ["persona"]
    assert variables["properties"]["place"]["default"] == "Rome"
    assert schema["required"] == ["question", "vars"]


def test_vars_with_defaults_only_are_optional() -> None:
    flow = prompt_flow("{tone}: {question}", {"tone": "calm"})
    schema = input_schema(chatflow(allowed=["vars"]), flow)
    assert schema["required"] == ["question"]
    assert schema["properties"]["vars"]["required"] == []
