"""Secret node inputs (those whose schema says `"secret": true`, such as `apiKey`) are
stored encrypted inside flowData, shown as a mask, and revealed only to compile a run."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from tailwinds.engine.registry import NODE_TYPES
from tailwinds.store.secrets import SecretBox

MASK = "********"
SEALED = "enc:v1:"
SEALED_JSON = "enc:v1j:"  # a secret object (headers, say), sealed as its JSON


def _secret_inputs(node_type: str) -> list[str]:
    cls = NODE_TYPES.get(node_type)
    if cls is None:
        return []
    return [
        info.alias or name
        for name, info in cls.Inputs.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("secret")
    ]


def _secret_slots(flow_data: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    slots = []
    for node in flow_data.get("nodes") or []:
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
            continue
        for name in _secret_inputs(str(node.get("type"))):
            if isinstance(node["inputs"].get(name), str | dict):
                slots.append((node, name))
    return slots


def unmask(flow_data: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
    """A flowData sent back with masks in place keeps the stored secrets there."""
    flow_data = copy.deepcopy(flow_data)
    previous = {
        (node.get("id"), name): node["inputs"][name] for node, name in _secret_slots(stored or {})
    }
    for node, name in _secret_slots(flow_data):
        if node["inputs"][name] == MASK:
            node["inputs"][name] = previous.get((node.get("id"), name))
            if node["inputs"][name] is None:
                del node["inputs"][name]
    return flow_data


def seal(flow_data: dict[str, Any], box: SecretBox) -> dict[str, Any]:
    flow_data = copy.deepcopy(flow_data)
    for node, name in _secret_slots(flow_data):
        value = node["inputs"][name]
        if isinstance(value, dict):
            if value:
                node["inputs"][name] = SEALED_JSON + box.encrypt(orjson.dumps(value))
        elif value and not value.startswith(SEALED):
            node["inputs"][name] = SEALED + box.encrypt(value.encode())
    return flow_data


def reveal(flow_data: dict[str, Any], box: SecretBox) -> dict[str, Any]:
    flow_data = copy.deepcopy(flow_data)
    for node, name in _secret_slots(flow_data):
        value = node["inputs"][name]
        if isinstance(value, str) and value.startswith(SEALED_JSON):
            node["inputs"][name] = orjson.loads(box.decrypt(value[len(SEALED_JSON) :]))
        elif isinstance(value, str) and value.startswith(SEALED):
            node["inputs"][name] = box.decrypt(value[len(SEALED) :]).decode()
    return flow_data


def mask(flow_data: dict[str, Any]) -> dict[str, Any]:
    flow_data = copy.deepcopy(flow_data)
    for node, name in _secret_slots(flow_data):
        if node["inputs"][name]:
            node["inputs"][name] = MASK
    return flow_data
