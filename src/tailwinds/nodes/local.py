"""The embedded local model node (extra `tailwinds[local]`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar, Literal

from pydantic import Field

from tailwinds.engine.context import RunContext
from tailwinds.engine.registry import NodeInputs, register_node
from tailwinds.errors import FlowError
from tailwinds.messages import ChatMessage, ToolSpec, Usage
from tailwinds.nodes.models import ChatModelNode
from tailwinds.providers.llama_cpp import (
    INSTALL_HINT,
    LocalModel,
    ModelKey,
    Reservation,
    default_threads,
    local_model_available,
)
from tailwinds.providers.local_catalog import CATALOG, spec_of


@register_node
class ChatLocal(ChatModelNode):
    """A small model running in this process: a packaged one (SmolLM2-135M-Instruct or
    Gemma 3 270M, `providers/local_catalog.py`) or any GGUF file."""

    type_name: ClassVar[str] = "chatLocal"
    label: ClassVar[str] = "Local model (llama.cpp)"

    class Inputs(NodeInputs):
        model: Literal["smollm2-135m", "gemma3-270m"] | None = Field(
            None,
            description="the packaged model; unset: the server's TAILWINDS_LOCAL_MODEL. With "
            "modelPath, the prompt format of this one is used (unset: a plain completion)",
        )
        model_path: str = Field("", description="a GGUF file; empty: the packaged model")
        max_tokens: int = Field(256, gt=0, le=8192)
        temperature: float = Field(0.7, ge=0, le=2)
        context_size: int = Field(2048, ge=256, le=131072)
        threads: int = Field(default_factory=default_threads, ge=1, le=256)
        system_message: str | None = None

    inputs: Inputs

    def _model(self, ctx: RunContext) -> LocalModel:
        i = self.inputs
        settings = ctx.resources.settings
        name = i.model or settings.local_model
        if not local_model_available(name, gguf=bool(i.model_path)):
            # before the stream: the packaged model this node would run is not installed
            package = spec_of(name).package
            raise FlowError(f"{INSTALL_HINT} (the model {name!r} is in the package {package!r})")
        return ctx.resources.local_models.get(
            ModelKey(i.model_path, i.context_size, i.threads, name),
            settings.home / "models",
            settings.local_model_queue,
        )

    async def prepare(self, ctx: RunContext) -> None:
        reservation = self._model(ctx).reserve()
        ctx.state[self.node_id] = reservation
        ctx.cleanups.append(reservation.release)

    async def stream_chat(
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
        i = self.inputs
        name = i.model or ("" if i.model_path else ctx.resources.settings.local_model)
        spec = spec_of(name) if name else CATALOG["gemma3-270m"]  # a GGUF: a completion
        async for piece in self._model(ctx).generate(
            spec.prompt(messages),
            max_tokens=i.max_tokens,
            temperature=i.temperature,
            stop=list(spec.stop),
            reservation=reservation,
        ):
            if type(piece) is str and not started:
                piece = piece.lstrip()
                started = bool(piece)
            if piece:
                yield piece
