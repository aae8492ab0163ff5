"""Queue mode's transport: an API node queues each admitted run for the workers (Redis
Streams, transport/queue.py) and relays its numbered frames back; chats' leases and rate
limits are counted in Redis by all nodes together."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Awaitable, Callable

from redis.exceptions import RedisError

from tailwinds.config import Settings
from tailwinds.engine.approvals import ApprovalDesk
from tailwinds.engine.events import Event
from tailwinds.engine.turns import ChatTurns
from tailwinds.errors import QueueFull, TailwindsError, TransportLost
from tailwinds.runs.admission import Admission
from tailwinds.runs.answers import decode_frames
from tailwinds.runs.transport import Limiter, RunHere
from tailwinds.runs.waiting import decoded
from tailwinds.store.messages import StoredTurn
from tailwinds.transport.queue import RUN_TTL_S, QueueClient
from tailwinds.transport.redis_approvals import RedisApprovals
from tailwinds.transport.redis_limits import RedisRateLimiter


class QueueTransport:
    relays_frames = True

    def __init__(self, queue: QueueClient) -> None:
        self.queue = queue
        self.turns: ChatTurns = queue.turns
        self.limiter: Limiter = RedisRateLimiter(queue.redis, queue.keys)
        # decisions posted to this node reach the worker holding the run
        self.approvals: ApprovalDesk = RedisApprovals(queue.redis, queue.keys)

    @classmethod
    async def open(
        cls, settings: Settings, store: Callable[[StoredTurn], Awaitable[None]] | None = None
    ) -> QueueTransport:
        """Connected to Redis (`ConnectionError` when it does not answer). `store`: the
        turns of jobs withdrawn by an abort (`QueueClient`)."""
        queue = QueueClient(settings, store)
        await queue.open()
        return cls(queue)

    async def stream(
        self, admission: Admission, run_here: RunHere
    ) -> AsyncIterator[Event] | AsyncIterator[bytes]:
        return await self._queued(admission)

    async def answer_events(self, admission: Admission, run_here: RunHere) -> AsyncIterator[Event]:
        return decode_frames(await self._queued(admission))

    async def waiting_answer(self, admission: Admission, run_here: RunHere) -> AsyncIterator[Event]:
        # marked before it is queued: its decision may come to any API node
        key = self._answer_key(admission.turn.message_id)
        ttl_s = int(admission.resume_grace_s) + RUN_TTL_S
        try:
            await self.queue.redis.set(key, b"1", ex=ttl_s)
        except (RedisError, OSError) as exc:
            admission.withdraw()
            raise TransportLost(f"the job queue (Redis) is not reachable: {exc}") from exc
        return decoded(await self._queued(admission))

    async def answer_rest(self, chatflow_id: str, message_id: str) -> AsyncIterator[Event] | None:
        try:
            marked = await self.queue.redis.exists(self._answer_key(message_id))
        except (RedisError, OSError) as exc:
            raise TransportLost(f"the event streams (Redis) are not reachable: {exc}") from exc
        if not marked:
            return None
        grace_s = await self.queue.check_stream(chatflow_id, message_id)
        return decoded(self.queue.relay(message_id, 0, grace_s))

    async def abort_run(self, message_id: str, error: TailwindsError) -> None:
        await self.queue.abort_runs([message_id])

    def _answer_key(self, message_id: str) -> str:
        return f"{self.queue.keys.prefix}:answer:{message_id}"

    async def resume(
        self, chatflow_id: str, message_id: str, after: int
    ) -> AsyncIterator[bytes] | None:
        grace_s = await self.queue.check_stream(chatflow_id, message_id)
        if await self.queue.ended_by(message_id, after):
            return None
        return self.queue.relay(message_id, after, grace_s)

    async def _queued(self, admission: Admission) -> AsyncIterator[bytes]:
        turn = admission.turn
        lease = admission.lease
        queue = self.queue
        # subscribed before the job is queued, counted in the same round trip
        sub = queue.reader.add(turn.message_id, 1, relayed=True)
        try:
            start = await queue.enqueue(admission.job(), sub)
        except BaseException as exc:
            queue.reader.unsubscribe(sub)
            admission.release()
            if lease is not None:
                lease.release_soon()
            if not isinstance(exc, QueueFull):
                # the client left while the job was being queued, or the reply was lost
                # (a timeout): it may be queued all the same, for nobody
                queue.left_early(turn.message_id)
            raise

        def release() -> None:
            admission.release()
            if lease is not None:
                lease.detach()  # the worker frees the chat once the turn is stored

        relayed = queue.relay(
            turn.message_id, 1, admission.resume_grace_s, first=start, release=release, sub=sub
        )
        if lease is not None:
            weakref.finalize(relayed, lease.detach)  # a relay dropped, never closed
        return relayed

    async def running_in(self, chatflow_id: str, chat_id: str) -> list[str]:
        return await self.queue.running_in(chatflow_id, chat_id)

    async def abort(self, chatflow_id: str, chat_id: str) -> int:
        return await self.queue.abort_chat(chatflow_id, chat_id)

    def end_all(self, error: TailwindsError) -> None:
        self.queue.reader.end_all(error.code, error.message)

    async def checks(self) -> dict[str, str]:
        return {"redis": "ok" if await self.queue.ready() else "error: not reachable"}

    async def depth(self) -> int | None:
        return await self.queue.depth()

    async def close(self) -> None:
        await self.queue.close()
