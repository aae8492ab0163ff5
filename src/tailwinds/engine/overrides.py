"""Which node inputs a caller may set per request (`overrideConfig`), by risk.

Most inputs only shape the answer (temperature, a system message, top K). Three kinds
decide more than that, and a caller who may set them takes what they guard:

- destination: where requests go or what runs (`baseUrl`, `url`, `allowList`, `command`,
  `modelPath`): a caller's URL would receive the node's credential and the prompt;
- credential: whose account is used (`credential`, `apiKey`, `headers`, `env`);
- data scope: which data is read (`documentStoreId`, `chatflowId`, `metadataFilter`).

A risky input is overridable only where the chatflow's author marks it on the node too:
`{"id": "chat_0", "type": "chatOpenAI", "inputs": {...}, "riskyOverrides": ["baseUrl"]}`,
beside the chatflow's `allowedOverrides`. A node whose destination a caller may set cannot
hold a saved credential (the caller's server would receive it). Unmarked, the name is
refused at save time (`allowedOverrides[i]`) and at prediction time
(`overrideConfig.<name>`), and an override reaches only the nodes that mark it.

A field declares its risk with `json_schema_extra={"risk": "destination"}` (or `None`:
no risk whatever its name); otherwise its name decides (the tables below), and a secret
field (`{"secret": True}`) is a credential.
"""

from __future__ import annotations

from typing import Any

from pydantic.fields import FieldInfo

from tailwinds.engine.registry import Node

DESTINATION, CREDENTIAL, DATA_SCOPE = "destination", "credential", "data scope"
RISKS_BY_NAME = {
    "url": DESTINATION,
    "allowList": DESTINATION,
    "methods": DESTINATION,
    "command": DESTINATION,
    "include": DESTINATION,  # which of an MCP server's tools the model may call
    "apiKey": CREDENTIAL,
    "credential": CREDENTIAL,
    "headers": CREDENTIAL,
    "env": CREDENTIAL,
    "metadataFilter": DATA_SCOPE,
    "collectionName": DATA_SCOPE,
}
# names a future input is likely to have: a new `serverUrl` is a destination by default
RISKS_BY_SUFFIX = (
    ("Url", DESTINATION),
    ("Host", DESTINATION),
    ("Endpoint", DESTINATION),
    ("Path", DESTINATION),
    ("Key", CREDENTIAL),
    ("Token", CREDENTIAL),
    ("Secret", CREDENTIAL),
    ("Id", DATA_SCOPE),
)


def field_risk(name: str, info: FieldInfo) -> str | None:
    """The risk of setting input `name` (its camelCase alias), or None."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "risk" in extra:
        return extra["risk"]  # type: ignore[return-value]
    if extra.get("secret"):
        return CREDENTIAL
    if name in RISKS_BY_NAME:
        return RISKS_BY_NAME[name]
    return next((risk for suffix, risk in RISKS_BY_SUFFIX if name.endswith(suffix)), None)


# per node type; the registry is filled once
_INPUT_RISKS: dict[type[Node], dict[str, str | None]] = {}


def input_risks(cls: type[Node]) -> dict[str, str | None]:
    """Every input of a node type by its camelCase name, with its risk."""
    risks = _INPUT_RISKS.get(cls)
    if risks is None:
        risks = _INPUT_RISKS[cls] = {
            info.alias or name: field_risk(info.alias or name, info)
            for name, info in cls.Inputs.model_fields.items()
        }
    return risks


# inputs that name a credential kept by the server (its id), rather than carry a secret
STORED_CREDENTIAL_INPUTS = frozenset({"credential", "credentialId"})


def credential_held(node: Node) -> str | None:
    """The name of a credential input this node holds a saved value for, if any."""
    for name, info in type(node.inputs).model_fields.items():
        alias = info.alias or name
        if field_risk(alias, info) == CREDENTIAL and getattr(node.inputs, name, None):
            return alias
    return None


def applies(cls: type[Node], name: str, marked: frozenset[str]) -> bool:
    """Whether an override of `name` reaches a node of `cls` with `marked` risky inputs."""
    risks = input_risks(cls)
    return name in risks and (risks[name] is None or name in marked)


def risk_of(classes: Any, name: str) -> str | None:
    """The risk `name` has on any of the node types `classes`, or None."""
    for cls in classes:
        risk = input_risks(cls).get(name)
        if risk is not None:
            return risk
    return None
