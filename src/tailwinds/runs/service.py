"""The prediction service: check everything that can fail before the first byte, run the
flow, store the turn; abort, shut down, and run chatflows for `chatflowTool`s. Where the
events go (this process, or queued for a worker) is the `Transport` it is given."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from tailwinds.config import Settings
from tailwinds.engine.context import DEPTH, Resources, RunContext, SubAnswer, ToolError, Turn
from tailwinds.engine.events import (
    Event,
)
from tailwinds.engine.history import well_formed_history
from tailwinds.engine.runner import FlowRunner, RunResult
from tailwinds.engine.runs import RunRegistry
from tailwinds.engine.turns import TurnLease, freeing_chat, guard_unstarted
from tailwinds.engine.uploads import uploads_from_json
from tailwinds.errors import (
    ChatBusy,
    ChatflowNotFound,
    RunCancelled,
    ServerShutdown,
    StreamNotFound,
    TailwindsError,
)
from tailwinds.limits import Scope
from tailwinds.messages import ChatMessage
from tailwinds.runs.admission import Admission, PreparedRun
from tailwinds.runs.answers import collect_answer
from tailwinds.runs.chatflow_access import CHATFLOW_MAX_AGE_S, ChatflowAccess
from tailwinds.runs.follow_ups import follow_ups_of
from tailwinds.runs.prediction_request import (
    PredictionRequest,
    check_overrides,
    parse_request,
    resume_grace_s,
)
from tailwinds.runs.request_caps import run_overrides
from tailwinds.runs.transport import Transport
from tailwinds.runs.uploads import read_uploads
from tailwinds.runs.waiting import approval_grace_s
from tailwinds.store.apikeys import ApiKeyRepository
from tailwinds.store.chatflows import Chatflow, ChatflowRepository
from tailwinds.store.feedback import FeedbackRepository
from tailwinds.store.messages import ROLE_TO_CHAT, MessageRepository, StoredTurn
from tailwinds.store.secrets import SecretBox
from tailwinds.transport.jobs import Job


class PredictionService:
    def __init__(
        self,
        settings: Settings,
        resources: Resources,
        chatflows: ChatflowRepository,
        messages: MessageRepository,
        api_keys: ApiKeyRepository,
        runner: FlowRunner,
        runs: RunRegistry,
        box: SecretBox,
        transport: Transport,
    ) -> None:
        self.box = box
        self.transport = transport
        self.shutting_down = False
        self.settings = settings
        self.resources = resources
        self.chatflows = chatflows
        self.messages = messages
        self.api_keys = api_keys
        self.runner = runner
        self.runs = runs
        self.access = ChatflowAccess(settings, chatflows, api_keys, box)
        self.authorize = self.access.authorize
        self.authorized_chatflow = self.access.authorized_chatflow
        self.compiled = self.access.compiled

    async def admit(self, chatflow_id: str, body: bytes, authorization: str | None) -> Admission:
        """Everything that can refuse a prediction before its stream starts, on the node
        that holds the client's connection."""
        return await self.admit_request(chatflow_id, parse_request(body), authorization)

    async def admit_request(
        self, chatflow_id: str, request: PredictionRequest, authorization: str | None
    ) -> Admission:
        """`admit` for a request already parsed (or built from another dialect's body: an
        OpenAI, AG-UI or AI SDK request)."""
        if self.shutting_down:
            raise ServerShutdown()
        chatflow, api_key = await self.authorize(chatflow_id, authorization)
        overrides = request.override_config
        check_overrides(overrides, chatflow.allowed_overrides)
        flow = self.compiled(chatflow, overrides)

        chat_id = request.chat_id or str(uuid.uuid4())
        session_id, run_vars = run_overrides(overrides, chat_id)
        history: list[ChatMessage] = []
        if request.history is not None:
            history = [ChatMessage(ROLE_TO_CHAT[h.role], h.content) for h in request.history]  # type: ignore[arg-type]
        turn = Turn(
            question=request.question or "",
            chat_id=chat_id,
            session_id=session_id,
            message_id=str(uuid.uuid4()),
            history=history,
            vars=run_vars,
        )
        # a new conversation has nothing stored yet to read, nor anyone else asking in it
        named = request.chat_id is not None or "sessionId" in overrides
        load_history = request.history is None and named
        # ...unless its run may wait for a person: its chat id is handed back meanwhile
        held = named or approval_grace_s(flow, chatflow) is not None
        lease = await self._take_chat(chatflow, turn) if held else None
        scopes: list[Scope] = [(f"chatflow:{chatflow.id}", chatflow.rate_limit)]
        if api_key is not None:
            scopes.append((f"key:{api_key.id}", api_key.rate_limit))
        try:
            release = await self.transport.limiter.admit_all(scopes)
        except BaseException:
            if lease is not None:
                lease.release_soon()
            raise
        try:
            # after the limits: an upload by URL is a fetch that a refused caller must not get
            turn.uploads = await read_uploads(request.uploads, chatflow, self.settings)
        except BaseException:
            release()
            if lease is not None:
                lease.release_soon()
            raise
        return Admission(
            chatflow=chatflow,
            flow=flow,
            turn=turn,
            load_history=load_history,
            streaming=request.streaming,
            resume_grace_s=resume_grace_s(request, chatflow),
            overrides=overrides,
            release=release,
            lease=lease,
        )

    async def _take_chat(
        self, chatflow: Chatflow, turn: Turn, policy: str | None = None
    ) -> TurnLease:
        """The chat's lease for this turn, as `policy` (by default the chatflow's
        `concurrentTurns`) says: refused (409 `chat_busy`) while another turn runs, or
        after waiting for it."""
        return await self.transport.turns.acquire(
            chatflow.id,
            turn.session_id,
            turn.message_id,
            policy or chatflow.concurrent_turns,
            self.settings.turn_wait_s,
        )

    async def admission_for(self, job: Job) -> Admission:
        """A worker's side of `admit`: the job was checked by the API node already."""
        chatflow = await self.chatflows.get(job.chatflow_id, max_age_s=CHATFLOW_MAX_AGE_S)
        if chatflow is None:
            raise ChatflowNotFound(job.chatflow_id)
        turn = Turn(
            question=job.question,
            chat_id=job.chat_id,
            session_id=job.session_id,
            message_id=job.message_id,
            history=[ChatMessage(role, content) for role, content in job.history or ()],  # type: ignore[arg-type]
            vars=job.vars,
            uploads=uploads_from_json(job.uploads),
        )
        flow = self.compiled(chatflow, job.overrides)
        # the API node took the chat's lease; the worker keeps it until the turn is stored
        # (taken last: nothing after it may fail and leave it held)
        lease = (
            await self.transport.turns.adopt(chatflow.id, turn.session_id, turn.message_id)
            if job.chat_lease
            else None
        )
        return Admission(
            chatflow=chatflow,
            flow=flow,
            turn=turn,
            load_history=job.history is None,
            streaming=True,
            resume_grace_s=job.grace_s,
            overrides=job.overrides,
            lease=lease,
        )

    async def start(self, admission: Admission) -> PreparedRun:
        """What the run needs before it starts, where it runs: its history, the resources
        its nodes reserve."""
        turn = admission.turn
        ctx = RunContext(turn, self.resources, state=dict(admission.state), chatflows=self)
        ctx.approval_timeout_s = admission.chatflow.approval_timeout_s
        ctx.cleanups.append(admission.release)
        try:
            if admission.load_history:
                turns = admission.flow.answer.history_turns(self.settings.default_history_turns)
                turn.history = await self.messages.history(
                    admission.chatflow.id, turn.session_id, turns
                )
            # stored or the client's, in every mode: what every provider takes
            turn.history = well_formed_history(turn.history)
            await admission.flow.answer.prepare(ctx)
        except Exception:
            ctx.close()  # give back what was reserved before the refusal
            if admission.lease is not None:
                await admission.lease.release()  # before the caller says the turn ended
            raise
        except BaseException:
            ctx.close()
            if admission.lease is not None:
                admission.lease.release_soon()
            raise
        return PreparedRun(admission.chatflow, admission.flow, ctx, admission.lease)

    def events(self, prepared: PreparedRun) -> AsyncIterator[Event]:
        lease, ctx = prepared.lease, prepared.ctx
        record = self._record if lease is None else freeing_chat(lease, ctx, self._record)
        run = self.runner.run(prepared.chatflow.id, prepared.flow, ctx, self.runs, record)
        if lease is not None:
            guard_unstarted(run, lease)
        return follow_ups_of(run, prepared, FeedbackRepository(self.messages.db))

    @property
    def relays_frames(self) -> bool:
        """Whether `stream` gives numbered frames (bytes) rather than events."""
        return self.transport.relays_frames

    async def run_here(self, admission: Admission) -> AsyncIterator[Event]:
        """Run the admitted prediction in this process: its events."""
        return self.events(await self.start(admission))

    async def stream(self, admission: Admission) -> AsyncIterator[Event] | AsyncIterator[bytes]:
        """The run's events for the SSE response: events straight from the runner (the
        fast path), or numbered frames when the stream can be resumed or runs elsewhere."""
        return await self.transport.stream(admission, self.run_here)

    async def answer_events(self, admission: Admission) -> AsyncIterator[Event]:
        """The run of a non-streaming answer, started (queue mode: queued), for
        `collect_answer`."""
        return await self.transport.answer_events(admission, self.run_here)

    async def waiting_answer(self, admission: Admission) -> AsyncIterator[Event] | None:
        """The run of a non-streaming answer that may stop at an `action` (runs/waiting.py),
        started as a resumable run; None when no tool of its chatflow asks for approval
        (then `answer_events` is the cheaper way)."""
        grace_s = approval_grace_s(admission.flow, admission.chatflow)
        if grace_s is None:
            return None
        admission.resume_grace_s = max(admission.resume_grace_s, grace_s)
        return await self.transport.waiting_answer(admission, self.run_here)

    async def answer_rest(self, chatflow_id: str, message_id: str) -> AsyncIterator[Event] | None:
        """A waiting JSON answer's events from the first (None: the run was not one)."""
        return await self.transport.answer_rest(chatflow_id, message_id)

    async def abort_run(self, message_id: str, why: str) -> None:
        await self.transport.abort_run(message_id, RunCancelled(why))

    async def resume(
        self, chatflow_id: str, message_id: str, after: int, authorization: str | None
    ) -> AsyncIterator[bytes] | None:
        """The frames after number `after`, then the live rest; None when the stream
        ended at or before `after` (nothing more will ever come)."""
        await self.authorized_chatflow(chatflow_id, authorization)
        return await self.transport.resume(chatflow_id, message_id, after)

    async def chat_stream(
        self, chatflow_id: str, chat_id: str, authorization: str | None
    ) -> AsyncIterator[bytes] | None:
        """The stream of the chat's running prediction from its first frame (the AI SDK's
        reconnect), or None when none runs or its stream cannot be resumed."""
        await self.authorized_chatflow(chatflow_id, authorization)
        for message_id in await self.transport.running_in(chatflow_id, chat_id):
            try:
                frames = await self.transport.resume(chatflow_id, message_id, 0)
            except StreamNotFound:
                continue  # a run asked without a grace (the Prediction API's): not resumable
            if frames is not None:
                return frames
        return None

    async def ask(
        self, chatflow_id: str, question: str, chat_id: str, session_id: str, depth: int
    ) -> SubAnswer:
        """A chatflow's answer for a `chatflowTool`: the same runner, collected, stored in a
        chat of its own; its failure is the tool's."""
        chatflow = await self.chatflows.get(chatflow_id, max_age_s=CHATFLOW_MAX_AGE_S)
        if chatflow is None:
            raise ToolError(f"there is no chatflow {chatflow_id}")
        turn = Turn(
            question=question, chat_id=chat_id, session_id=session_id, message_id=str(uuid.uuid4())
        )
        flow = self.compiled(chatflow, {})
        try:
            # the parent's turn owns its sub-chat: calls it makes at once (parallel tool
            # calls) take turns in it rather than refuse each other
            lease = await self._take_chat(chatflow, turn, "queue")
        except ChatBusy as exc:
            raise ToolError(f"the chatflow cannot answer now: {exc.message}") from exc
        admission = Admission(
            chatflow=chatflow,
            flow=flow,
            turn=turn,
            load_history=True,
            streaming=False,
            resume_grace_s=0.0,
            overrides={},
            state={DEPTH: depth},
            lease=lease,
        )
        prepared = await self.start(admission)
        try:
            answer = await collect_answer(self.events(prepared))
        except TailwindsError as exc:
            raise ToolError(f"the chatflow failed: {exc.message}") from exc
        return SubAnswer(answer["text"], answer.get("sourceDocuments", []))

    async def exists(self, chatflow_id: str) -> bool:
        return await self.chatflows.get(chatflow_id) is not None

    async def _record(self, result: RunResult) -> None:
        turn = result.turn
        await self.messages.add_turn(
            StoredTurn(
                chatflow_id=result.chatflow_id,
                chat_id=turn.chat_id,
                session_id=turn.session_id,
                question=turn.question,
                message_id=turn.message_id,
                answer=result.text,
                status=result.status,
                error=result.error.message if result.error else None,
                usage=result.usage,
                asked_at=result.started_at,
                used_tools=result.tools or None,
            )
        )

    async def abort(self, chatflow_id: str, chat_id: str) -> int:
        return await self.transport.abort(chatflow_id, chat_id)

    def begin_shutdown(self, grace_s: float) -> None:
        """Refuse new predictions; let running ones finish for `grace_s`, then end them
        with `error` `{code: "server_shutdown"}` and `end`."""
        if self.shutting_down:
            return
        self.shutting_down = True
        asyncio.get_running_loop().call_later(grace_s, self._shut_down)

    def _shut_down(self) -> None:
        error = ServerShutdown()
        self.runs.abort_all(error)
        self.transport.end_all(error)
