"""An `error` event's code comes back as the error class that names it, whichever module
defines that class (a node's own errors load after errors.py)."""

from __future__ import annotations

import tailwinds.nodes  # noqa: F401  (defines the nodes' own errors)
from tailwinds.errors import FlowError, TailwindsError, error_from_code
from tailwinds.nodes.agents import AgentLimit


def test_a_nodes_own_error_keeps_its_code_and_status() -> None:
    error = error_from_code("agent_limit", "the agent took too many steps")
    assert type(error) is AgentLimit and isinstance(error, FlowError)
    assert error.code == "agent_limit" and error.message == "the agent took too many steps"


def test_an_unknown_code_is_a_plain_error() -> None:
    error = error_from_code("no_such_code", "?")
    assert type(error) is TailwindsError and error.message == "?"
