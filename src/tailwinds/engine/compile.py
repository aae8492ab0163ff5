"""Validate a chatflow's graph and build its nodes, once per version.

Every mistake is reported as `InvalidRequest` naming the node id and the field, at save
time, so that predictions never meet a broken flow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from tailwinds.engine import overrides as risks
from tailwinds.engine.flow import FlowData, FlowEdge, FlowNode
from tailwinds.engine.registry import NODE_TYPES, AnsweringNode, Node, NodeInputs
from tailwinds.engine.validation import describe_validation_error
from tailwinds.errors import InvalidRequest

# overrideConfig keys that steer the run rather than a node's inputs
RUN_OVERRIDES = frozenset({"sessionId", "vars"})


@dataclass(slots=True, frozen=True)
class CompiledFlow:
    nodes: dict[str, Node]
    answer: AnsweringNode
    # per node id, the risky inputs its author lets callers set (engine/overrides.py)
    marked: dict[str, frozenset[str]] = field(default_factory=dict)

    def overridable_inputs(self) -> set[str]:
        names: set[str] = set()
        for node in self.nodes.values():
            for name, info in type(node.inputs).model_fields.items():
                names.add(info.alias or name)
        return names

    def check_allowed_overrides(self, names: Iterable[str]) -> None:
        """On save: each of the chatflow's `allowedOverrides` names an input of one of
        its nodes (or a run override). Raises `InvalidRequest` naming `allowedOverrides[i]`.

        A risky input (a destination, a credential, a data scope) may be listed without
        its node's `riskyOverrides` mark, as chatflows exported from elsewhere do: the
        listing alone opens nothing. A request's value for it reaches only the nodes
        that mark it (`_inputs`); where none does, it is ignored, as Flowise ignores the
        overrides it does not allow, and the saved value is used."""
        known = self.overridable_inputs() | RUN_OVERRIDES
        for n, name in enumerate(names):
            if name not in known:
                raise InvalidRequest(
                    f"{name!r} is not an input of any node in this chatflow "
                    f"(known: {', '.join(sorted(known))})",
                    field=f"allowedOverrides[{n}]",
                )


def parse_flow_data(flow_data: Any) -> FlowData:
    try:
        return FlowData.model_validate(flow_data)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc, prefix="flowData")) from exc


def compile_flow(flow_data: Any, overrides: Mapping[str, Any] | None = None) -> CompiledFlow:
    """Build the graph. `overrides` replace node inputs of the same name, checked by the
    same schemas as saved inputs."""
    flow = parse_flow_data(flow_data)
    node_specs = {}
    for spec in flow.nodes:
        if spec.id in node_specs:
            raise InvalidRequest(f"node id {spec.id!r} is used twice", field="flowData.nodes")
        if spec.type not in NODE_TYPES:
            known = ", ".join(sorted(NODE_TYPES))
            raise InvalidRequest(
                f"unknown node type {spec.type!r} (known: {known})",
                field=f"nodes[{spec.id}].type",
            )
        node_specs[spec.id] = spec

    incoming = _check_edges(flow.edges, node_specs)
    order = _topological_order(node_specs, flow.edges)

    built: dict[str, Node] = {}
    marks: dict[str, frozenset[str]] = {}
    for node_id in order:
        spec = node_specs[node_id]
        cls = NODE_TYPES[spec.type]
        links: dict[str, Any] = {}
        for edge in incoming.get(node_id, []):
            if cls.ports[edge.target_input].many:
                links.setdefault(edge.target_input, []).append(built[edge.source])
            else:
                links[edge.target_input] = built[edge.source]
        for port_name, port in cls.ports.items():
            if port.required and port_name not in links:
                raise InvalidRequest(
                    f"needs an edge from a {port.category} node",
                    field=f"nodes[{node_id}].inputs.{port_name}",
                )
        marked = _marked(cls, spec)
        inputs = _inputs(cls, node_id, spec.inputs, overrides, marked)
        built[node_id] = cls(node_id, inputs, links)
        built[node_id].validate()
        if not overrides:  # the saved inputs: a caller's own key is theirs to send
            _check_marked(built[node_id], marked)
        marks[node_id] = marked

    sources = {edge.source for edge in flow.edges}
    sinks = [node_id for node_id in order if node_id not in sources]
    if len(sinks) != 1:
        raise InvalidRequest(
            "a chatflow needs exactly one answering node (one node with no outgoing edge); "
            f"found {len(sinks)}: {', '.join(sinks)}",
            field="flowData",
        )
    answer = built[sinks[0]]
    if not isinstance(answer, AnsweringNode):
        raise InvalidRequest(
            f"node {answer.node_id!r} ({answer.type_name}) cannot answer: connect it to a "
            "chat model or a chain",
            field=f"nodes[{answer.node_id}]",
        )
    return CompiledFlow(nodes=built, answer=answer, marked=marks)


def _marked(cls: type[Node], spec: FlowNode) -> frozenset[str]:
    risks_of_cls = risks.input_risks(cls)
    for n, name in enumerate(spec.risky_overrides):
        if name not in risks_of_cls:
            raise InvalidRequest(
                f"{cls.type_name} has no input {name!r}",
                field=f"nodes[{spec.id}].riskyOverrides[{n}]",
            )
    return frozenset(spec.risky_overrides)


def _check_marked(node: Node, marked: frozenset[str]) -> None:
    """A caller who may choose where a node's requests go must not receive its saved
    credential with them."""
    risks_of_cls = risks.input_risks(type(node))
    destinations = sorted(n for n in marked if risks_of_cls[n] == risks.DESTINATION)
    held = risks.credential_held(node) if destinations else None
    if held is not None:
        raise InvalidRequest(
            f"callers may set {destinations[0]!r} here, and the node holds a saved {held!r}: "
            f"their server would receive it; remove the {held!r} or the mark",
            field=f"nodes[{node.node_id}].riskyOverrides",
        )
    # a stored credential named by the caller would go to the caller's server just the same
    stored = sorted(n for n in marked if n in risks.STORED_CREDENTIAL_INPUTS)
    if destinations and stored:
        raise InvalidRequest(
            f"callers may set both {destinations[0]!r} and {stored[0]!r} here: they could send "
            "a stored credential to a server of their own; mark one of them, not both",
            field=f"nodes[{node.node_id}].riskyOverrides",
        )


def _inputs(
    cls: type[Node],
    node_id: str,
    raw: dict[str, Any],
    overrides: Mapping[str, Any] | None,
    marked: frozenset[str] = frozenset(),
) -> NodeInputs:
    values = {k: v for k, v in raw.items() if k not in cls.ports}
    if overrides:
        values.update({k: v for k, v in overrides.items() if risks.applies(cls, k, marked)})
    try:
        return cls.Inputs.model_validate(values)
    except ValidationError as exc:
        where = "overrideConfig" if overrides else f"nodes[{node_id}].inputs"
        raise InvalidRequest(
            f"node {node_id!r} ({cls.type_name}): " + describe_validation_error(exc, prefix=where)
        ) from exc


def _check_edges(edges: Iterable[FlowEdge], specs: Mapping[str, Any]) -> dict[str, list[FlowEdge]]:
    incoming: dict[str, list[FlowEdge]] = {}
    for edge in edges:
        for end in (edge.source, edge.target):
            if end not in specs:
                raise InvalidRequest(
                    f"edge {edge.source!r} → {edge.target!r} names a missing node {end!r}",
                    field="flowData.edges",
                )
        target_cls = NODE_TYPES[specs[edge.target].type]
        port = target_cls.ports.get(edge.target_input)
        field = f"nodes[{edge.target}].inputs.{edge.target_input}"
        if port is None:
            ports = ", ".join(target_cls.ports) or "none"
            raise InvalidRequest(
                f"{target_cls.type_name} has no input {edge.target_input!r} for an edge "
                f"(inputs that take edges: {ports})",
                field=field,
            )
        source_cls = NODE_TYPES[specs[edge.source].type]
        if source_cls.category != port.category:
            raise InvalidRequest(
                f"expects a {port.category} node, got {edge.source!r} "
                f"({source_cls.type_name}, a {source_cls.category})",
                field=field,
            )
        linked = incoming.setdefault(edge.target, [])
        if not port.many and any(e.target_input == edge.target_input for e in linked):
            raise InvalidRequest("has two incoming edges", field=field)
        linked.append(edge)
    return incoming


def _topological_order(specs: Mapping[str, Any], edges: Iterable[FlowEdge]) -> list[str]:
    indegree = dict.fromkeys(specs, 0)
    children: dict[str, list[str]] = {node_id: [] for node_id in specs}
    for edge in edges:
        indegree[edge.target] += 1
        children[edge.source].append(edge.target)
    ready = [node_id for node_id, n in indegree.items() if n == 0]
    order: list[str] = []
    while ready:
        node_id = ready.pop()
        order.append(node_id)
        for child in children[node_id]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if len(order) != len(specs):
        cycle = sorted(node_id for node_id, n in indegree.items() if n > 0)
        raise InvalidRequest(f"the graph has a cycle through {', '.join(cycle)}", field="flowData")
    return order
