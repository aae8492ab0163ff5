"""Chat model nodes: each one wraps a provider's wire client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import ClassVar

from pydantic import Field

from tailwinds.engine.context import RunContext
from tailwinds.engine.registry import AnsweringNode, NodeInputs, register_node
from tailwinds.errors import FlowError
from tailwinds.messages import ChatMessage, ToolCall, ToolSpec, Usage
from tailwinds.providers.anthropic_messages import AnthropicMessagesProvider
from tailwinds.providers.base import ChatProvider, ChatRequest, ProviderLimits
from tailwinds.providers.ollama_native import OllamaChatProvider
from tailwinds.providers.openai_chat import OpenAIChatProvider
from tailwinds.wire import WireClient


class ChatModelNode(AnsweringNode):
    """Alone, a chat model answers the question with the conversation's recent history."""

    category: ClassVar[str] = "chatModel"
    supports_tools: ClassVar[bool] = False

    def history_turns(self, default_turns: int) -> int:
        return default_turns

    @property
    def system_message(self) -> str | None:
        return getattr(self.inputs, "system_message", None)

    def answer(self, ctx: RunContext) -> AsyncIterator[str | Usage]:
        turns = self.history_turns(ctx.resources.settings.default_history_turns)
        history = ctx.turn.history[-2 * turns :] if turns else []
        return self.stream_chat(
            ctx, build_messages(self.system_message, history, ctx.turn.question)
        )

    def provider(
        self, wire: WireClient, limits: ProviderLimits, api_key: str | None
    ) -> ChatProvider:
        raise NotImplementedError

    async def prepare(self, ctx: RunContext) -> None:
        """Fetch the named credential's key, so a missing one fails before the stream."""
        credential_id = getattr(self.inputs, "credential", None)
        if not credential_id:
            return
        data = await ctx.resources.credentials.secret(credential_id)
        if data is None or not data.get("apiKey"):
            raise FlowError(
                f"node {self.node_id!r} names credential {credential_id!r}, which no longer "
                "exists or holds no apiKey"
            )
        ctx.state[self.node_id] = data["apiKey"]

    def stream_chat(
        self,
        ctx: RunContext,
        messages: list[ChatMessage],
        tools: list[ToolSpec] | None = None,
    ) -> AsyncIterator[str | ToolCall | Usage]:
        i = self.inputs
        api_key = ctx.state.get(self.node_id) or getattr(i, "api_key", None)
        provider = self.provider(
            ctx.resources.wire, ProviderLimits.from_settings(ctx.resources.settings), api_key
        )
        return provider.stream_chat(
            ChatRequest(
                i.model,  # type: ignore[attr-defined]
                messages,
                temperature=i.temperature,  # type: ignore[attr-defined]
                max_tokens=i.max_tokens,  # type: ignore[attr-defined]
                tools=tools,
            )
        )


def build_messages(
    system: str | None, history: Sequence[ChatMessage], question: str
) -> list[ChatMessage]:
    messages = [ChatMessage("system", system)] if system else []
    messages.extend(history)
    messages.append(ChatMessage("user", question))
    return messages


@register_node
class ChatOpenAI(ChatModelNode):
    type_name: ClassVar[str] = "chatOpenAI"
    label: ClassVar[str] = "OpenAI-compatible chat model"
    supports_tools: ClassVar[bool] = True

    class Inputs(NodeInputs):
        model: str = Field(min_length=1)
        base_url: str = Field("https://api.openai.com/v1", pattern=r"^https?://")
        api_key: str | None = Field(None, json_schema_extra={"secret": True})
        credential: str | None = Field(None, description="id of a stored credential")
        temperature: float | None = Field(None, ge=0, le=2)
        max_tokens: int | None = Field(None, gt=0)
        system_message: str | None = None

    inputs: Inputs

    def provider(
        self, wire: WireClient, limits: ProviderLimits, api_key: str | None
    ) -> ChatProvider:
        return OpenAIChatProvider(wire, self.inputs.base_url, api_key, limits)


@register_node
class ChatAnthropic(ChatModelNode):
    type_name: ClassVar[str] = "chatAnthropic"
    label: ClassVar[str] = "Anthropic chat model"
    supports_tools: ClassVar[bool] = True

    class Inputs(NodeInputs):
        model: str = Field(min_length=1)
        base_url: str = Field("https://api.anthropic.com", pattern=r"^https?://")
        api_key: str | None = Field(None, json_schema_extra={"secret": True})
        credential: str | None = Field(None, description="id of a stored credential")
        temperature: float | None = Field(None, ge=0, le=1)
        max_tokens: int = Field(1024, gt=0)
        system_message: str | None = None

    inputs: Inputs

    def provider(
        self, wire: WireClient, limits: ProviderLimits, api_key: str | None
    ) -> ChatProvider:
        return AnthropicMessagesProvider(wire, self.inputs.base_url, api_key, limits)


@register_node
class ChatOllama(ChatModelNode):
    type_name: ClassVar[str] = "chatOllama"
    label: ClassVar[str] = "Ollama chat model"
    supports_tools: ClassVar[bool] = True

    class Inputs(NodeInputs):
        model: str = Field(min_length=1)
        base_url: str = Field("http://127.0.0.1:11434", pattern=r"^https?://")
        temperature: float | None = Field(None, ge=0, le=2)
        max_tokens: int | None = Field(None, gt=0)
        keep_alive: str | None = Field(
            None, description="how long Ollama keeps the model loaded, e.g. 5m"
        )
        system_message: str | None = None

    inputs: Inputs

    def provider(
        self, wire: WireClient, limits: ProviderLimits, api_key: str | None
    ) -> ChatProvider:
        return OllamaChatProvider(wire, self.inputs.base_url, limits, self.inputs.keep_alive)
