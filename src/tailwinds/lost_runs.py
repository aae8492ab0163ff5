"""Queue mode: ending the run of a job whose worker was lost (it stopped heartbeating and
another worker claimed the job, or its own worker read it again after Redis failed under
it) once that run had begun answering, so that it cannot run again without contradicting
what its client saw; and storing a job whose stream Redis lost before it began."""

from __future__ import annotations

import logging
from typing import cast

import orjson
from redis.asyncio import Redis

from tailwinds.engine.events import EndEvent, ErrorEvent
from tailwinds.errors import TransportLost, WorkerLost
from tailwinds.sse import SSEDecoder
from tailwinds.store.messages import MessageRepository, StoredTurn
from tailwinds.transport.frames import numbered
from tailwinds.transport.jobs import Job
from tailwinds.transport.keys import Keys, StreamEntry, entry_seq
from tailwinds.transport.redis_events import FRAME_FIELD
from tailwinds.transport.redis_turns import RedisTurns
from tailwinds.transport.redis_writer import EventWriter

logger = logging.getLogger("tailwinds.worker")


async def end_lost(
    job: Job,
    redis: Redis,
    keys: Keys,
    writer: EventWriter,
    turns: RedisTurns,
    messages: MessageRepository,
) -> None:
    """End the run's stream with `error` `{code: "worker_lost"}` and `end` after what it
    holds, and store the answer it had streamed as failed; nothing when its stream had
    ended already (only the job's acknowledgement was lost). Raises `RedisError`/`OSError`
    when Redis cannot be reached (the job stays pending)."""
    message_id = job.message_id
    entries = cast(list[StreamEntry], await redis.xrange(keys.events(message_id)))
    if entries and b"e" in entries[-1][1]:
        return
    seq = entry_seq(entries[-1][0]) if entries else 1
    error = WorkerLost("the worker running this prediction stopped; ask again")
    said = SSEDecoder().feed(b"".join(fields[FRAME_FIELD] for _, fields in entries))
    answer = "".join(orjson.loads(m.data)["token"] for m in said if m.event == "token")
    # stored, then the chat freed, then `end`: the client's next turn finds this one
    await _store_failed(job, messages, answer, str(error))
    await turns.free_chat(job.chatflow_id, job.session_id, message_id)
    writer.append(message_id, seq + 1, numbered(seq + 1, ErrorEvent(error.code, str(error))))
    writer.append(message_id, seq + 2, numbered(seq + 2, EndEvent()), end=True)
    await writer.synced()
    logger.warning("run %s: its worker was lost after it had begun answering", message_id)


async def store_gone(job: Job, turns: RedisTurns, messages: MessageRepository) -> None:
    """Store as failed (`transport_lost`, as its client was told) a job read before Redis
    lost its data (a restart without persistence) and begun after: its stream and its
    client's relay went with the data, and it does not run for nobody. Raises
    `RedisError`/`OSError` when Redis cannot be reached."""
    error = TransportLost("Redis lost this prediction before it began (it lost its data)")
    await _store_failed(job, messages, "", str(error))
    await turns.free_chat(job.chatflow_id, job.session_id, job.message_id)
    logger.warning("job %s: its stream was gone when it began", job.message_id)


async def _store_failed(job: Job, messages: MessageRepository, answer: str, error: str) -> None:
    try:
        await messages.add_turn(
            StoredTurn(
                chatflow_id=job.chatflow_id,
                chat_id=job.chat_id,
                session_id=job.session_id,
                question=job.question,
                message_id=job.message_id,
                answer=answer,
                status="error",
                error=error,
                usage=None,
                # ordered in the chat by when it was asked, not by when it was given up
                asked_at=job.asked(),
            )
        )
    except Exception:
        logger.exception("storing run %s failed", job.message_id)  # its stream ends still
