"""The `mcpTools` node as saved: a stdio server's environment may carry its keys, never a
variable that makes a listed program start another."""

from __future__ import annotations

import pytest

import tailwinds.nodes  # noqa: F401  (fills the node registry)
from tailwinds.engine.compile import compile_flow
from tailwinds.errors import InvalidRequest


def flow(env: dict[str, str]) -> dict[str, object]:
    model = {"id": "m", "type": "chatOpenAI", "inputs": {"model": "x"}}
    tools = {"id": "t", "type": "mcpTools", "inputs": {"command": ["mcp-server"], "env": env}}
    agent = {"id": "a", "type": "toolAgent", "inputs": {}}
    edges = [
        {"source": "m", "target": "a", "targetInput": "model"},
        {"source": "t", "target": "a", "targetInput": "tools"},
    ]
    return {"nodes": [model, tools, agent], "edges": edges}


def test_keys_in_the_environment_are_fine() -> None:
    compile_flow(flow({"GITHUB_TOKEN": "ghp_x", "API_BASE": "https://example.com"}))


@pytest.mark.parametrize(
    "name",
    [
        "LD_PRELOAD",
        "PYTHONWARNINGS",
        "pythonstartup",
        "NODE_OPTIONS",
        "BASH_ENV",
        "BROWSER",
        "PATH",
    ],
)
def test_variables_that_steer_programs_are_refused_by_name(name: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        compile_flow(flow({name: "x"}))
    assert refused.value.field == f"nodes[t].inputs.env.{name}"
