"""Chat model nodes: each one wraps a provider's wire client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import ClassVar, Literal

from pydantic import Field

from tailwinds import tracing
from tailwinds.engine.context import RunContext
from tailwinds.engine.events import ThinkingEvent
from tailwinds.engine.registry import AnsweringNode, NodeInputs, register_node
from tailwinds.engine.uploads import with_uploads
from tailwinds.errors import FlowError, InvalidRequest
from tailwinds.messages import ChatMessage, ToolSpec
from tailwinds.providers.anthropic_messages import AnthropicMessagesProvider
from tailwinds.providers.azure_openai import DEFAULT_API_VERSION, azure_chat
from tailwinds.providers.base import ChatProvider, ChatRequest, Piece, ProviderLimits
from tailwinds.providers.gemini import (
    DEFAULT_BASE_URL as GEMINI_URL,
)
from tailwinds.providers.gemini import (
    SAFETY_CATEGORIES,
    SAFETY_THRESHOLDS,
    GeminiChatProvider,
)
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

    def answer(self, ctx: RunContext) -> AsyncIterator[Piece]:
        turns = self.history_turns(ctx.resources.settings.default_history_turns)
        history = ctx.turn.history[-2 * turns :] if turns else []
        return self.stream_chat(
            ctx, build_messages(self.system_message, history, ctx.turn.question)
        )

    @property
    def model_name(self) -> str:
        return str(getattr(self.inputs, "model", ""))

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
    ) -> AsyncIterator[Piece]:
        """The provider's pieces; its reasoning (`ThinkingEvent`s) left out when the node's
        `thinking` input (a chatflow setting, or `overrideConfig.thinking`) is false."""
        i = self.inputs
        api_key = ctx.state.get(self.node_id) or getattr(i, "api_key", None)
        provider = self.provider(
            ctx.resources.wire, ProviderLimits.from_settings(ctx.resources.settings), api_key
        )
        request = ChatRequest(
            self.model_name,
            with_uploads(messages, ctx.turn),
            temperature=getattr(i, "temperature", None),
            max_tokens=getattr(i, "max_tokens", None),
            tools=tools,
            thinking_budget=getattr(i, "thinking_budget", None),
            reasoning_effort=getattr(i, "reasoning_effort", None),
        )
        stream = tracing.traced_chat(ctx, self, request, provider)
        if getattr(i, "thinking", True):
            return stream  # as it is: no wrapper on the token path
        return without_thinking(stream)


async def without_thinking(stream: AsyncIterator[Piece]) -> AsyncIterator[Piece]:
    async for piece in stream:
        if type(piece) is not ThinkingEvent:
            yield piece


class ModelInputs(NodeInputs):
    """What every remote chat model node takes besides its own inputs."""

    thinking: bool = Field(
        True,
        description="stream the model's reasoning as `thinking` events; false drops it",
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

    class Inputs(ModelInputs):
        model: str = Field(min_length=1)
        base_url: str = Field("https://api.openai.com/v1", pattern=r"^https?://")
        api_key: str | None = Field(None, json_schema_extra={"secret": True})
        credential: str | None = Field(None, description="id of a stored credential")
        temperature: float | None = Field(None, ge=0, le=2)
        max_tokens: int | None = Field(None, gt=0)
        reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = Field(
            None, description="for reasoning models (o-series, gpt-5): how hard to think"
        )
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

    class Inputs(ModelInputs):
        model: str = Field(min_length=1)
        base_url: str = Field("https://api.anthropic.com", pattern=r"^https?://")
        api_key: str | None = Field(None, json_schema_extra={"secret": True})
        credential: str | None = Field(None, description="id of a stored credential")
        temperature: float | None = Field(None, ge=0, le=1)
        max_tokens: int = Field(1024, gt=0)
        thinking_budget: int | None = Field(
            None, ge=1024, description="extended thinking: tokens it may spend, below maxTokens"
        )
        system_message: str | None = None

    inputs: Inputs

    def validate(self) -> None:
        budget = self.inputs.thinking_budget
        if budget is None:
            return
        field = f"nodes[{self.node_id}].inputs.thinkingBudget"
        if budget >= self.inputs.max_tokens:
            raise InvalidRequest(
                f"must be below maxTokens ({self.inputs.max_tokens}): Anthropic counts the "
                "thinking in the answer's tokens",
                field=field,
            )
        if self.inputs.temperature is not None:
            raise InvalidRequest(
                "extended thinking does not take a temperature: leave temperature unset",
                field=f"nodes[{self.node_id}].inputs.temperature",
            )

    def provider(
        self, wire: WireClient, limits: ProviderLimits, api_key: str | None
    ) -> ChatProvider:
        return AnthropicMessagesProvider(wire, self.inputs.base_url, api_key, limits)


@register_node
class ChatOllama(ChatModelNode):
    type_name: ClassVar[str] = "chatOllama"
    label: ClassVar[str] = "Ollama chat model"
    supports_tools: ClassVar[bool] = True

    class Inputs(ModelInputs):
        model: str = Field(min_length=1)
        base_url: str = Field("http://127.0.0.1:11434", pattern=r"^https?://")
        temperature: float | None = Field(None, ge=0, le=2)
        max_tokens: int | None = Field(None, gt=0)
        keep_alive: str | None = Field(
            None, description="how long Ollama keeps the model loaded, e.g. 5m"
        )
        think: bool | None = Field(
            None,
            description="ask a reasoning model to think (Ollama's `think`); unset: its default",
        )
        system_message: str | None = None

    inputs: Inputs

    def provider(
        self, wire: WireClient, limits: ProviderLimits, api_key: str | None
    ) -> ChatProvider:
        return OllamaChatProvider(
            wire, self.inputs.base_url, limits, self.inputs.keep_alive, self.inputs.think
        )


@register_node
class ChatAzureOpenAI(ChatModelNode):
    """An Azure OpenAI deployment (`providers/azure_openai.py`)."""

    type_name: ClassVar[str] = "chatAzureOpenAI"
    label: ClassVar[str] = "Azure OpenAI chat model"
    supports_tools: ClassVar[bool] = True

    class Inputs(ModelInputs):
        endpoint: str = Field(
            pattern=r"^https?://[^/?#]+/?$",
            description="the resource's endpoint, e.g. https://my-resource.openai.azure.com",
            json_schema_extra={"risk": "destination"},
        )
        deployment: str = Field(min_length=1, max_length=256, pattern=r"^[^/?#]+$")
        api_version: str = Field(DEFAULT_API_VERSION, pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$")
        api_key: str | None = Field(None, json_schema_extra={"secret": True})
        credential: str | None = Field(None, description="id of a stored credential")
        auth: Literal["apiKey", "bearer"] = Field(
            "apiKey",
            description="apiKey: the key in an api-key header; bearer: an Entra ID token "
            "as Authorization: Bearer",
        )
        temperature: float | None = Field(None, ge=0, le=2)
        max_tokens: int | None = Field(None, gt=0)
        reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
        system_message: str | None = None

    inputs: Inputs

    @property
    def model_name(self) -> str:
        return self.inputs.deployment

    def provider(
        self, wire: WireClient, limits: ProviderLimits, api_key: str | None
    ) -> ChatProvider:
        i = self.inputs
        return azure_chat(wire, i.endpoint, i.deployment, i.api_version, api_key, limits, i.auth)


class SafetySetting(NodeInputs):
    """One of Gemini's safety settings (ai.google.dev/api/generate-content#safetysetting)."""

    category: Literal[SAFETY_CATEGORIES]  # type: ignore[valid-type]
    threshold: Literal[SAFETY_THRESHOLDS]  # type: ignore[valid-type]


@register_node
class ChatGoogleGemini(ChatModelNode):
    """Google Gemini through its native REST API (`providers/gemini.py`)."""

    type_name: ClassVar[str] = "chatGoogleGemini"
    label: ClassVar[str] = "Google Gemini chat model"
    supports_tools: ClassVar[bool] = True

    class Inputs(ModelInputs):
        model: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9][\w.\-/]*$")
        base_url: str = Field(GEMINI_URL, pattern=r"^https?://")
        api_key: str | None = Field(None, json_schema_extra={"secret": True})
        credential: str | None = Field(None, description="id of a stored credential")
        temperature: float | None = Field(None, ge=0, le=2)
        max_tokens: int | None = Field(None, gt=0)
        thinking_budget: int | None = Field(
            None, ge=-1, le=32768, description="tokens it may think: 0 off, -1 its own choice"
        )
        safety_settings: list[SafetySetting] | None = Field(None, max_length=10)
        system_message: str | None = None

    inputs: Inputs

    def provider(
        self, wire: WireClient, limits: ProviderLimits, api_key: str | None
    ) -> ChatProvider:
        i = self.inputs
        safety = [s.model_dump() for s in i.safety_settings] if i.safety_settings else None
        # the reasoning is asked for only when it is shown
        return GeminiChatProvider(wire, i.base_url, api_key, limits, safety, i.thinking)
