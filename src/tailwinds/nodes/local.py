"""The embedded local model node (extra `tailwinds[local]`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import ClassVar

from pydantic import Field

from tailwinds.engine.context import RunContext
from tailwinds.engine.registry import NodeInputs, register_node
from tailwinds.errors import FlowError
from tailwinds.messages import ChatMessage, ToolSpec, Usage
from tailwinds.nodes.models import ChatModelNode
from tailwinds.providers.llama_cpp import (
    INSTALL_HINT,
    ModelKey,
    Reservation,
    default_threads,
    local_model_available,
)

DEFAULT_SYSTEM = (
    "The following is a conversation between a user and a helpful, friendly assistant. "
    "The assistant answers briefly and accurately."
)
# a base model continues text: a short conversation teaches it the frame to continue
FEW_SHOT = [
    ChatMessage("user", "Hello, who are you?"),
    ChatMessage("assistant", "I am a helpful assistant. How can I help you today?"),
]
STOP = ["\nUser:", "\nAssistant:", "\n\n\n"]
SPEAKERS = {"user": "User", "assistant": "Assistant"}


def completion_prompt(messages: Sequence[ChatMessage]) -> str:
    system = "\n".join(m.content for m in messages if m.role == "system") or DEFAULT_SYSTEM
    turns = [*FEW_SHOT, *(m for m in messages if m.role != "system")]
    lines = [system, ""]
    lines += [f"{SPEAKERS[m.role]}: {m.content.strip()}" for m in turns]
    return "\n".join(lines) + "\nAssistant:"


@register_node
class ChatLocal(ChatModelNode):
    """Gemma 3 270M (a base model, prompted as a completion) running in this process."""

    type_name: ClassVar[str] = "chatLocal"
    label: ClassVar[str] = "Local model (llama.cpp)"

    class Inputs(NodeInputs):
        model_path: str = Field("", description="a GGUF file; empty: the packaged Gemma 3 270M")
        max_tokens: int = Field(256, gt=0, le=8192)
        temperature: float = Field(0.7, ge=0, le=2)
        context_size: int = Field(2048, ge=256, le=131072)
        threads: int = Field(default_factory=default_threads, ge=1, le=256)
        system_message: str | None = None

    inputs: Inputs

    def _model(self, ctx: RunContext):  # type: ignore[no-untyped-def]
        if not local_model_available():
            raise FlowError(INSTALL_HINT)
        i = self.inputs
        settings = ctx.resources.settings
        return ctx.resources.local_models.get(
            ModelKey(i.model_path, i.context_size, i.threads),
            settings.home / "models",
            settings.local_model_queue,
        )

    async def prepare(self, ctx: RunContext) -> None:
        reservation = self._model(ctx).reserve()
        ctx.state[self.node_id] = reservation
        ctx.cleanups.append(reservation.release)

    async def stream_chat(  # type: ignore[override]
        self,
        ctx: RunContext,
        messages: list[ChatMessage],
        tools: list[ToolSpec] | None = None,
    ) -> AsyncIterator[str | Usage]:
        reservation = ctx.state.get(self.node_id)
        if not isinstance(reservation, Reservation):
            await self.prepare(ctx)
            reservation = ctx.state[self.node_id]
        started = False
        async for piece in self._model(ctx).generate(
            completion_prompt(messages),
            max_tokens=self.inputs.max_tokens,
            temperature=self.inputs.temperature,
            stop=STOP,
            reservation=reservation,
        ):
            if type(piece) is str and not started:
                piece = piece.lstrip()
                started = bool(piece)
            if piece:
                yield piece
