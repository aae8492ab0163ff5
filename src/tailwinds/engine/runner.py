"""The flow runner: a compiled chatflow plus a turn in, an async iterator of events out.

It is the one place that decides the order of events: `start` first, then what the
answering node produces, then `metadata` (or `error`), and `end` last, always.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from tailwinds import metrics, tracing
from tailwinds.background import BackgroundTasks
from tailwinds.engine.compile import CompiledFlow
from tailwinds.engine.context import Resources, RunContext, Turn
from tailwinds.engine.events import (
    EndEvent,
    ErrorEvent,
    Event,
    MetadataEvent,
    StartEvent,
    TokenEvent,
    UsedToolsEvent,
)
from tailwinds.engine.runs import RunRegistry
from tailwinds.errors import (
    AnswerTooLong,
    FlowError,
    RunCancelled,
    ServerShutdown,
    StorageFailed,
    TailwindsError,
)
from tailwinds.messages import Usage

logger = logging.getLogger("tailwinds.run")

Status = Literal["complete", "aborted", "error"]

# the answer so far is held as strings of a few tokens each, not one small string per
# token (~90 bytes each, kept for the whole stream): every this many tokens are joined
JOIN_EVERY = 8


@dataclass(slots=True)
class RunResult:
    chatflow_id: str
    turn: Turn
    parts: list[str] = field(default_factory=list)
    tokens: int = 0
    status: Status = "complete"
    usage: Usage | None = None
    error: TailwindsError | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_s: float = field(default_factory=time.perf_counter)
    first_token_s: float | None = None
    span: Any = None  # the run's trace span (tailwinds.tracing), ended with the outcome

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def metadata(self) -> dict[str, Any]:
        turn = self.turn
        data: dict[str, Any] = {
            "chatId": turn.chat_id,
            "messageId": turn.message_id,
            "question": turn.question,
            "sessionId": turn.session_id,
            "chatflowId": self.chatflow_id,
            # null counts where the provider reports none
            "usage": (self.usage or Usage()).as_dict(),
        }
        return data


Recorder = Callable[[RunResult], Awaitable[None]]


class FlowRunner:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self._background = BackgroundTasks()

    async def run(
        self,
        chatflow_id: str,
        flow: CompiledFlow,
        ctx: RunContext,
        runs: RunRegistry,
        record: Recorder,
    ) -> AsyncIterator[Event]:
        """Drive `flow` for the turn of `ctx` (prepared by `flow.answer.prepare`). `record`
        stores the outcome before `end` goes out; when the consumer goes away instead, it
        still runs, in the background."""
        turn = ctx.turn
        ctx.chatflow_id = chatflow_id
        result = RunResult(chatflow_id, turn)
        result.span = ctx.span = tracing.start_prediction(chatflow_id, turn)
        parts = result.parts
        joined = 0  # how many of the parts are joined blocks of JOIN_EVERY tokens
        chars_left = self.resources.settings.max_answer_chars
        with runs.track(chatflow_id, turn.chat_id, turn.message_id) as handle:
            try:
                yield StartEvent(turn.chat_id, turn.message_id)
                handle.task = asyncio.current_task()
                try:
                    if handle.error is not None:
                        raise handle.error
                    async for item in flow.answer.answer(ctx):
                        if type(item) is str:
                            if item:
                                chars_left -= len(item)
                                if chars_left < 0:
                                    item = item[: len(item) + chars_left]
                                    if item:
                                        parts.append(item)
                                        yield TokenEvent(item)
                                    raise _too_long(self.resources.settings.max_answer_chars)
                                if not result.tokens:
                                    result.first_token_s = time.perf_counter()
                                result.tokens += 1
                                parts.append(item)
                                if len(parts) - joined == JOIN_EVERY:
                                    parts[joined:] = ("".join(parts[joined:]),)
                                    joined += 1
                                yield TokenEvent(item)
                        elif type(item) is Usage:
                            result.usage = item
                        else:
                            if type(item) is UsedToolsEvent:
                                result.tools.extend(item.tools)
                            yield item  # type: ignore[misc]
                        if handle.error is not None:
                            # the cancel landed in the consumer, between two of our awaits
                            raise handle.error
                except asyncio.CancelledError:
                    if handle.error is None:
                        raise
                    asyncio.current_task().uncancel()  # type: ignore[union-attr]
                    _fail(result, handle.error)
                except TailwindsError as exc:
                    _fail(result, exc)
                except Exception as exc:
                    logger.exception("run %s of chatflow %s failed", turn.message_id, chatflow_id)
                    _fail(result, FlowError(f"the flow failed: {type(exc).__name__}"))
                finally:
                    handle.task = None
            except (asyncio.CancelledError, GeneratorExit):
                # the consumer left (client disconnected): keep what was produced, as aborted
                result.status = "aborted"
                self._background.spawn(self._finish(result, record))
                raise
            finally:
                ctx.close()
        stored = await asyncio.shield(self._background.spawn(self._finish(result, record)))
        if result.error is not None:
            yield ErrorEvent(result.error.code, result.error.message)
        elif not stored:
            # the client has the answer, but the chat's history does not: it must know
            yield ErrorEvent(StorageFailed.code, StorageFailed().message)
        else:
            yield MetadataEvent(result.metadata())
        yield EndEvent()

    async def _finish(self, result: RunResult, record: Recorder) -> bool:
        """Count and store the outcome; False when it could not be stored."""
        elapsed_ms = (time.perf_counter() - result.started_s) * 1000
        if result.span is not None:
            tracing.end_prediction(result.span, result)
        ttft_ms = (result.first_token_s - result.started_s) * 1000 if result.first_token_s else None
        logger.info(
            "run %s chatflow=%s status=%s tokens=%d ms=%.0f ttft_ms=%s%s",
            result.turn.message_id,
            result.chatflow_id,
            result.status,
            result.tokens,
            elapsed_ms,
            f"{ttft_ms:.0f}" if ttft_ms is not None else "-",
            f" error={result.error.code}" if result.error else "",
        )
        metrics.RUNS.labels(result.status).inc()
        metrics.TOKENS.inc(result.tokens)
        metrics.RUN_SECONDS.observe(elapsed_ms / 1000)
        if ttft_ms is not None:
            metrics.TIME_TO_FIRST_TOKEN.observe(ttft_ms / 1000)
        if result.error is not None:
            metrics.RUN_ERRORS.labels(result.error.code).inc()
        try:
            await record(result)
        except StorageFailed:
            return False  # logged and counted where it was refused
        except Exception:
            logger.exception("storing run %s failed", result.turn.message_id)
            metrics.TURNS_NOT_STORED.inc()
            return False
        return True

    async def drain(self) -> None:
        """Wait for the outcomes still being stored (at shutdown)."""
        await self._background.drain()


def _too_long(limit: int) -> AnswerTooLong:
    return AnswerTooLong(
        f"the answer passed the server's limit of {limit} characters "
        "(TAILWINDS_MAX_ANSWER_CHARS); what came before it is kept"
    )


def _fail(result: RunResult, error: TailwindsError) -> None:
    result.error = error
    result.status = "aborted" if isinstance(error, RunCancelled | ServerShutdown) else "error"
