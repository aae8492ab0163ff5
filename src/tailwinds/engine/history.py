"""The conversation a model is given: well-formed for every provider.

Providers differ in what they refuse. Anthropic's Messages API answers 400 to any message
with empty content except a final assistant one ("all messages must have non-empty
content except for the optional final assistant message",
https://docs.anthropic.com/en/api/messages) and wants user and assistant turns to
alternate; OpenAI-compatible servers and Ollama take more, but an empty answer in memory
teaches a model nothing. So every history, stored or sent by the client, is made
well-formed here, once, before any node sees it:

- messages with no text (empty or only whitespace) are left out;
- neighbours of the same role are merged into one message, joined by a blank line (a
  client that sent two questions in a row);
- the history ends with an answer: a last question that has none is left out, as a
  question whose answer failed is (the question being asked comes next).

A history that holds this stays well-formed when a memory window keeps its last `2k`
messages.
"""

from __future__ import annotations

from collections.abc import Iterable

from tailwinds.messages import ChatMessage

CONVERSATION_ROLES = frozenset({"user", "assistant"})


def well_formed_history(messages: Iterable[ChatMessage]) -> list[ChatMessage]:
    """`messages` (user and assistant turns, oldest first) as a history every provider
    takes: no empty message, roles alternating, the last one an answer. Other roles
    (system, tool) have no place in a stored conversation and are left out."""
    out: list[ChatMessage] = []
    for message in messages:
        if message.role not in CONVERSATION_ROLES or not message.content.strip():
            continue
        if out and out[-1].role == message.role:
            out[-1] = ChatMessage(message.role, out[-1].content + "\n\n" + message.content)
        else:
            out.append(message)
    if out and out[-1].role == "user":
        out.pop()
    return out
