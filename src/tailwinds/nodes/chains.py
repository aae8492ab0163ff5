"""Chains: nodes that combine a model with a prompt and memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

from tailwinds.engine.context import RunContext
from tailwinds.engine.registry import AnsweringNode, NodeInputs, Port, register_node
from tailwinds.messages import ChatMessage
from tailwinds.nodes.memory import MemoryNode
from tailwinds.nodes.models import ChatModelNode, build_messages
from tailwinds.nodes.prompts import PromptTemplate
from tailwinds.providers.base import Piece

_SPEAKERS = {"user": "Human", "assistant": "AI", "system": "System"}


def history_as_text(history: list[ChatMessage]) -> str:
    return "\n".join(f"{_SPEAKERS[m.role]}: {m.content}" for m in history)


class ChainNode(AnsweringNode):
    """An answering node fed by a chat model (port `model`) and optionally a memory (port
    `memory`), which sets how much history it reads."""

    category: ClassVar[str] = "chain"

    @property
    def model(self) -> ChatModelNode:
        return self.links["model"]

    @property
    def memory(self) -> MemoryNode | None:
        return self.links.get("memory")

    def history_turns(self, default_turns: int) -> int:
        return self.memory.turns() if self.memory else 0

    async def prepare(self, ctx: RunContext) -> None:
        await self.model.prepare(ctx)


@register_node
class ConversationChain(ChainNode):
    """A chat model, optionally with a prompt template and a memory. Without a memory it
    sees no history; with a prompt that uses `{history}`, the history goes into the prompt
    text instead of separate messages."""

    type_name: ClassVar[str] = "conversationChain"
    label: ClassVar[str] = "Conversation chain"
    ports: ClassVar[dict[str, Port]] = {
        "model": Port("chatModel", required=True),
        "prompt": Port("prompt"),
        "memory": Port("memory"),
    }

    class Inputs(NodeInputs):
        pass

    @property
    def prompt(self) -> PromptTemplate | None:
        return self.links.get("prompt")

    async def prepare(self, ctx: RunContext) -> None:
        if self.prompt is not None:
            self.prompt.check(ctx.turn.vars)
        await super().prepare(ctx)

    def answer(self, ctx: RunContext) -> AsyncIterator[Piece]:
        turn = ctx.turn
        history = self.memory.window(turn.history) if self.memory else []
        question = turn.question
        if self.prompt is not None:
            text_history = history_as_text(history) if self.prompt.uses_history else ""
            question = self.prompt.render(question, text_history, turn.vars)
            if self.prompt.uses_history:
                history = []
        messages = build_messages(self.model.system_message, history, question)
        return self.model.stream_chat(ctx, messages)
