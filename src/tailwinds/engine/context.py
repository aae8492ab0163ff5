"""What a run knows: the turn being answered and the long-lived resources it may use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tailwinds.config import Settings
from tailwinds.engine.approvals import ApprovalDesk, LocalApprovals
from tailwinds.messages import ChatMessage

if TYPE_CHECKING:
    import aiohttp

    from tailwinds.providers.llama_cpp import LocalModels
    from tailwinds.providers.mcp_sessions import McpSessions
    from tailwinds.wire import WireClient


@dataclass(slots=True)
class Turn:
    """One question to answer, with what came before it."""

    question: str
    chat_id: str
    session_id: str
    message_id: str
    history: list[ChatMessage] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    # files given with the question (ImagePart, FileText): engine/uploads.py
    uploads: list[Any] = field(default_factory=list)


class CredentialSource(Protocol):
    async def secret(self, credential_id: str) -> dict[str, str] | None:
        """A stored credential's decrypted data, or None when there is no such one."""
        ...


class DocumentSource(Protocol):
    async def search(
        self,
        store_id: str,
        query: str,
        top_k: int,
        mode: str,
        min_score: float | None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The best chunks of a document store for `query`, as `{pageContent, metadata}`."""
        ...

    async def exists(self, store_id: str) -> bool: ...


class ToolError(Exception):
    """What the model is told went wrong with its call (it may try again)."""


DEPTH = "chatflowTool.depth"  # in RunContext.state: how deep this run is


@dataclass(slots=True)
class SubAnswer:
    text: str
    documents: list[dict[str, Any]]


class ChatflowSource(Protocol):
    async def ask(
        self, chatflow_id: str, question: str, chat_id: str, session_id: str, depth: int
    ) -> SubAnswer:
        """Another chatflow's answer to `question`, run in this process (its own chat)."""
        ...

    async def exists(self, chatflow_id: str) -> bool: ...


@dataclass(slots=True)
class Resources:
    """Made once by the app or the worker and shared by every run."""

    settings: Settings
    # general HTTP (tools, ingest, Chroma)
    http: aiohttp.ClientSession
    # the model providers' own client (the token hot path)
    wire: WireClient
    credentials: CredentialSource
    documents: DocumentSource
    # sessions with MCP servers and the local models: kept open for every run, closed
    # with the process by the composition root that made them
    mcp_sessions: McpSessions
    local_models: LocalModels
    # tool calls waiting for a person (in Redis in queue mode: transport/redis_approvals.py)
    approvals: ApprovalDesk = field(default_factory=LocalApprovals)


@dataclass(slots=True)
class RunContext:
    turn: Turn
    resources: Resources
    # what nodes reserve before the stream (a slot in a local model's queue, say), by node
    state: dict[str, Any] = field(default_factory=dict)
    # run once the run is over, however it ends
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    # who runs other chatflows for a `chatflowTool`: the service that started this run
    chatflows: ChatflowSource | None = None
    # set by the runner: the chatflow whose run this is (an action's scope)
    chatflow_id: str = ""
    # the chatflow's `approvalTimeoutSeconds`, when it has one (engine/approvals.py)
    approval_timeout_s: float | None = None
    # the run's OpenTelemetry span (tailwinds.tracing), None when tracing is off: what the
    # model, tool and retrieval hooks check, once per call, never per token
    span: Any = None

    def close(self) -> None:
        while self.cleanups:
            self.cleanups.pop()()
