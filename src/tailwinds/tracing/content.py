"""Prompts, completions and tool calls as span attributes, in the GenAI conventions' JSON
shapes (v1.41.0: gen-ai-input-messages.json, gen-ai-output-messages.json): only with the
opt-in TAILWINDS_TRACE_CONTENT, since they may hold personal data."""

from __future__ import annotations

from typing import Any

import orjson

from tailwinds.messages import ChatMessage, ToolCall

# one attribute's text, past which it is cut (an exporter's batch stays small)
MAX_TEXT = 16_000


def tool_call_part(call: ToolCall) -> dict[str, Any]:
    return {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}


def input_content(messages: list[ChatMessage]) -> dict[str, str]:
    """gen_ai.system_instructions and gen_ai.input.messages, in the conventions' JSON
    schemas (gen-ai-input-messages.json)."""
    system = [
        {"type": "text", "content": m.content[:MAX_TEXT]} for m in messages if m.role == "system"
    ]
    chat: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        parts: list[dict[str, Any]]
        if m.role == "tool":
            parts = [
                {
                    "type": "tool_call_response",
                    "id": m.tool_call_id,
                    "response": m.content[:MAX_TEXT],
                }
            ]
        else:
            parts = [{"type": "text", "content": m.content[:MAX_TEXT]}] if m.content else []
            parts.extend(tool_call_part(call) for call in m.tool_calls)
        chat.append({"role": m.role, "parts": parts})
    out = {"gen_ai.input.messages": to_json(chat)}
    if system:
        out["gen_ai.system_instructions"] = to_json(system)
    return out


def to_json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()
