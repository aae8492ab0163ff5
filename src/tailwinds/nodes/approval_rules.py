"""Which tool calls need a person's approval: the `requireApproval` input every tool node
has, and the agent's per-tool `approvals`, read by `approval_gate.ApprovalGate`.

Rules: `"never"` (the default), `"always"`, or `"writes"`: calls that may change
something. A tool known to only read (calculator, date, document search) never does; an
`httpRequest` does when its method is not GET; any other tool (webhooks, MCP servers,
other chatflows) always may, so under `"writes"` it is always asked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from tailwinds.engine.registry import NodeInputs

ApprovalRule = Literal["never", "always", "writes"]


class ToolInputs(NodeInputs):
    """The inputs every tool node has."""

    require_approval: ApprovalRule = Field(
        "never",
        description="never, always, or writes (calls that may change something: HTTP "
        "methods other than GET, webhooks, MCP tools); the agent's `approvals` win",
    )


def _never(arguments: dict[str, Any]) -> bool:
    return False


def _http_method_writes(arguments: dict[str, Any]) -> bool:
    return str(arguments.get("method") or "GET").upper() != "GET"


# whether a call of a node type may change something, by type name; absent: it may
WRITES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "calculator": _never,
    "currentDateTime": _never,
    "retrieverTool": _never,
    "httpRequest": _http_method_writes,
}


def needs_approval(rule: ApprovalRule, type_name: str, arguments: dict[str, Any]) -> bool:
    if rule == "never":
        return False
    if rule == "always":
        return True
    writes = WRITES.get(type_name)
    return writes is None or writes(arguments)
