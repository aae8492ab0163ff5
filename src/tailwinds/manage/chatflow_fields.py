"""A chatflow's settings as the API takes them (`POST`/`PATCH /api/v1/chatflows`) and as
an export carries them (`POST /api/v1/import`): one model for both, so an import sets
everything a create may set."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from tailwinds.engine.approvals import MAX_APPROVAL_TIMEOUT_S
from tailwinds.limits import RateLimit
from tailwinds.runs.uploads import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_FILES,
    UPLOAD_TYPES,
)
from tailwinds.store.chatflows import ConcurrentTurns

# what a chatflow may allow per uploaded file (TAILWINDS_MAX_UPLOAD_BYTES bounds a request)
MAX_FILE_BYTES_SETTING = 1024**3

# JSON's true is not 1 nor "30" a number, and 1e999 is no setting (stored, it came back null)
_STRICT = ConfigDict(populate_by_name=True, extra="forbid", strict=True, allow_inf_nan=False)

Origin = Annotated[str, Field(pattern=r"^(\*|https?://[^/\s]+)$")]
UploadType = Literal[
    "image/png", "image/jpeg", "image/gif", "image/webp",
    "text/plain", "text/markdown", "text/csv", "application/json", "application/pdf",
]  # fmt: skip


class McpToolSettings(BaseModel):
    """The chatflow as an MCP tool (`/mcp`): off unless `exposed`; the name defaults to
    the chatflow's, the description to a sentence naming it. Names follow the MCP spec's
    tool-name rule (SEP-986)."""

    model_config = _STRICT

    exposed: bool = False
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    description: str | None = Field(None, max_length=2000)


class UploadLimits(BaseModel):
    """What a prediction's `uploads` may hold for this chatflow (runs/uploads.py)."""

    model_config = _STRICT

    max_files: int = Field(DEFAULT_MAX_FILES, alias="maxFiles", ge=0, le=20)
    max_file_bytes: int = Field(
        DEFAULT_MAX_FILE_BYTES, alias="maxFileBytes", ge=1, le=MAX_FILE_BYTES_SETTING
    )
    allowed_types: list[UploadType] = Field(
        cast("list[UploadType]", list(UPLOAD_TYPES)), alias="allowedTypes"
    )


class ChatbotConfig(BaseModel):
    """The chat widget's settings, served to Flowise's widget by `GET
    /api/v1/public-chatbotConfig/{id}` (in Flowise's shape: docs/PROTOCOL.md)."""

    model_config = _STRICT

    title: str | None = Field(None, max_length=200)
    welcome_message: str | None = Field(None, alias="welcomeMessage", max_length=2000)
    starter_prompts: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list, alias="starterPrompts", max_length=10
    )
    chat_feedback: bool = Field(False, alias="chatFeedback")
    follow_up_prompts: bool = Field(False, alias="followUpPrompts")
    uploads: UploadLimits | None = None


class ChatflowBody(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1, max_length=200)
    flow_data: dict[str, Any] = Field(alias="flowData")
    api_key_id: str | None = Field(None, alias="apiKeyId")
    allowed_overrides: list[str] = Field(default_factory=list, alias="allowedOverrides")
    allowed_origins: list[Origin] = Field(default_factory=list, alias="allowedOrigins")
    rate_limit: RateLimit | None = Field(None, alias="rateLimit")
    resume_grace_s: float | None = Field(None, alias="resumeGraceSeconds", ge=0, le=3600)
    concurrent_turns: ConcurrentTurns = Field("reject", alias="concurrentTurns")
    mcp_tool: McpToolSettings | None = Field(None, alias="mcpTool")
    approval_timeout_s: float | None = Field(
        None, alias="approvalTimeoutSeconds", gt=0, le=MAX_APPROVAL_TIMEOUT_S
    )
    chatbot_config: ChatbotConfig | None = Field(None, alias="chatbotConfig")


class ChatflowPatch(BaseModel):
    model_config = _STRICT

    name: str | None = Field(None, min_length=1, max_length=200)
    flow_data: dict[str, Any] | None = Field(None, alias="flowData")
    api_key_id: str | None = Field(None, alias="apiKeyId")
    allowed_overrides: list[str] | None = Field(None, alias="allowedOverrides")
    allowed_origins: list[Origin] | None = Field(None, alias="allowedOrigins")
    rate_limit: RateLimit | None = Field(None, alias="rateLimit")
    resume_grace_s: float | None = Field(None, alias="resumeGraceSeconds", ge=0, le=3600)
    concurrent_turns: ConcurrentTurns | None = Field(None, alias="concurrentTurns")
    mcp_tool: McpToolSettings | None = Field(None, alias="mcpTool")
    approval_timeout_s: float | None = Field(
        None, alias="approvalTimeoutSeconds", gt=0, le=MAX_APPROVAL_TIMEOUT_S
    )
    chatbot_config: ChatbotConfig | None = Field(None, alias="chatbotConfig")


def fields_of(body: ChatflowBody | ChatflowPatch, exclude_unset: bool = False) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=exclude_unset)
    if body.rate_limit is not None:  # stored as the API spells it
        fields["rate_limit"] = body.rate_limit.model_dump(by_alias=True, exclude_none=True)
    if body.chatbot_config is not None:  # stored as the API spells it
        fields["chatbot_config"] = body.chatbot_config.model_dump(by_alias=True)
    return fields


class ExportedChatflow(ChatflowBody):
    """A chatflow as `POST /api/v1/export` writes it: `ChatflowBody`'s settings and its id
    in the file (the sealed secrets are keyed by it); its version and dates are not kept."""

    model_config = ConfigDict(extra="ignore")  # and the rest of ChatflowBody's

    id: str | None = Field(None, max_length=200, exclude=True)
