"""Overridable inputs by risk: destinations, credentials and data scopes need the node's
own mark (`riskyOverrides`) besides `allowedOverrides`, refused at save and at predict."""

from __future__ import annotations

import re
from typing import Any

import pytest

import tailwinds.nodes  # noqa: F401
from tailwinds.engine import overrides
from tailwinds.engine.compile import compile_flow
from tailwinds.engine.registry import NODE_TYPES
from tailwinds.errors import InvalidRequest


def model(**node: Any) -> dict[str, Any]:
    inputs = {"model": "x", "baseUrl": "http://models.internal/v1", **node.pop("inputs", {})}
    return {"id": "m", "type": "chatOpenAI", "inputs": inputs, **node}


def flow(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"nodes": list(nodes)}


@pytest.mark.parametrize(
    ("name", "risk"),
    [
        ("baseUrl", overrides.DESTINATION),
        ("apiKey", overrides.CREDENTIAL),
        ("credential", overrides.CREDENTIAL),
        ("temperature", None),
        ("systemMessage", None),
    ],
)
def test_model_inputs_are_classified(name: str, risk: str | None) -> None:
    assert overrides.input_risks(NODE_TYPES["chatOpenAI"])[name] == risk


def test_every_input_that_looks_risky_is_classified() -> None:
    """A new input named like a URL, a key or an id cannot slip in unclassified."""
    words = {"url", "host", "key", "token", "secret", "credential", "command", "path", "id"}
    for cls in NODE_TYPES.values():
        for name, risk in overrides.input_risks(cls).items():
            if words & {w.lower() for w in re.findall(r"[a-z]+|[A-Z][a-z]*", name)}:
                assert risk is not None, f"{cls.type_name}.{name}"
    assert overrides.input_risks(NODE_TYPES["retriever"])["documentStoreId"] == "data scope"
    assert overrides.input_risks(NODE_TYPES["httpRequest"])["allowList"] == "destination"
    assert overrides.input_risks(NODE_TYPES["mcpTools"])["env"] == "credential"


def test_save_takes_an_unmarked_risky_override_that_then_opens_nothing() -> None:
    compiled = compile_flow(flow(model()))
    compiled.check_allowed_overrides(["temperature", "sessionId", "baseUrl"])
    with pytest.raises(InvalidRequest) as unknown:
        compiled.check_allowed_overrides(["temperature", "colour"])
    assert unknown.value.field == "allowedOverrides[1]"
    # the caller's value reaches no node: the saved one stays
    built = compile_flow(flow(model()), {"baseUrl": "http://attacker.example/v1"})
    assert built.nodes["m"].inputs.base_url != "http://attacker.example/v1"


def test_a_marked_destination_is_allowed_but_not_beside_a_saved_credential() -> None:
    compiled = compile_flow(flow(model(riskyOverrides=["baseUrl"])))
    compiled.check_allowed_overrides(["baseUrl"])
    with pytest.raises(InvalidRequest) as refused:
        compile_flow(flow(model(inputs={"credential": "c1"}, riskyOverrides=["baseUrl"])))
    assert refused.value.field == "nodes[m].riskyOverrides"
    # nor beside a stored credential the caller may name
    with pytest.raises(InvalidRequest) as both:
        compile_flow(flow(model(riskyOverrides=["baseUrl", "credential"])))
    assert both.value.field == "nodes[m].riskyOverrides"
    assert "stored credential" in both.value.message
    compile_flow(flow(model(riskyOverrides=["baseUrl", "apiKey"])))  # the caller's own key
    with pytest.raises(InvalidRequest) as unknown:
        compile_flow(flow(model(riskyOverrides=["colour"])))
    assert unknown.value.field == "nodes[m].riskyOverrides[0]"


def test_predict_ignores_or_applies_by_the_mark() -> None:
    saved = flow(model(inputs={"credential": "c1"}))
    # listed in allowedOverrides without the mark: the caller's value reaches no node
    ignored = compile_flow(saved, {"baseUrl": "http://attacker.example/v1"}).nodes["m"]
    assert ignored.inputs.base_url != "http://attacker.example/v1"
    assert compile_flow(saved, {"credential": "someone-elses"}).nodes["m"].inputs.credential == "c1"
    assert compile_flow(saved, {"temperature": 0.5}).nodes["m"].inputs.temperature == 0.5
    marked = flow(model(riskyOverrides=["baseUrl", "apiKey"]))
    built = compile_flow(marked, {"baseUrl": "http://mine.example/v1", "apiKey": "sk-own"})
    assert built.nodes["m"].inputs.base_url == "http://mine.example/v1"


def test_an_override_reaches_only_the_nodes_that_mark_it() -> None:
    def search(node_id: str, store: str, **node: Any) -> dict[str, Any]:
        inputs = {"documentStoreId": store, "name": f"search_{node_id}"}
        return {"id": node_id, "type": "retrieverTool", "inputs": inputs, **node}

    agent = {"id": "a", "type": "toolAgent", "inputs": {}}
    edges = [
        {"source": "m", "target": "a", "targetInput": "model"},
        {"source": "open", "target": "a", "targetInput": "tools"},
        {"source": "fixed", "target": "a", "targetInput": "tools"},
    ]
    nodes = [
        model(),
        search("open", "s1", riskyOverrides=["documentStoreId"]),
        search("fixed", "s2"),
        agent,
    ]
    built = compile_flow({"nodes": nodes, "edges": edges}, {"documentStoreId": "s9"})
    assert built.nodes["open"].inputs.document_store_id == "s9"
    assert built.nodes["fixed"].inputs.document_store_id == "s2"
