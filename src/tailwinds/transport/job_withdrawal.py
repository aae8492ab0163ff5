"""An abort of a job that no worker has begun: withdrawn from the jobs stream where it
waits, at once, instead of when a worker comes free to find it aborted. Its places (the
queue's, its chatflow's, its chat's lease and set of runs) are given back in the same
script, and its stream ends as a run stopped by an abort does: `error` `aborted`, `end`,
on its own stream (what a resume reads) and on the relay stream of the API node that
relays it live."""

from __future__ import annotations

from redis.asyncio import Redis

from tailwinds.engine.events import EndEvent, ErrorEvent
from tailwinds.errors import RunCancelled
from tailwinds.transport.frames import numbered
from tailwinds.transport.job_entries import WITHDRAWN
from tailwinds.transport.jobs import Job
from tailwinds.transport.keys import Keys

# KEYS: the run's facts, the jobs stream, its chatflow's count of jobs, its chat's set of
# runs, its event stream, its chat's lease, the relay stream of its API node (its event
# stream again when none). ARGV: its message id, the `error` and `end` frames, the
# streams' retention (s), the mark of a withdrawn job (`WITHDRAWN`). A worker that began
# the job set `entry` first (HSETNX, `JobEntries.first_entry`): then nothing is done
# here, and the worker stops the run on the abort mark. Returns the job's payload, `1`
# when it was withdrawn and its entry is gone already (a job of a version before
# `queued`), false when a worker has it.
_WITHDRAW = """
if redis.call('HSETNX', KEYS[1], 'entry', ARGV[5]) == 0 then return false end
local queued, job = redis.call('HGET', KEYS[1], 'queued'), 1
if queued then
  local found = redis.call('XRANGE', KEYS[2], queued, queued)
  if found[1] then job = found[1][2][2] end
  redis.call('XDEL', KEYS[2], queued)
end
if redis.call('DECR', KEYS[3]) <= 0 then redis.call('DEL', KEYS[3]) end
redis.call('SREM', KEYS[4], ARGV[1])
if redis.call('GET', KEYS[6]) == ARGV[1] then redis.call('DEL', KEYS[6]) end
redis.call('XADD', KEYS[5], '0-2', 'f', ARGV[2])
redis.call('XADD', KEYS[5], '0-3', 'f', ARGV[3], 'e', '1')
redis.call('EXPIRE', KEYS[5], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if KEYS[7] ~= KEYS[5] then
  redis.call('XADD', KEYS[7], '*', 'm', ARGV[1], 'a', '0-2', 'z', '0-3',
             'f', ARGV[2] .. ARGV[3], 'e', '1')
end
return job
"""

_FACTS = ("chatflow", "chat", "session", "relay")


async def withdraw(
    redis: Redis, keys: Keys, message_ids: list[str], retention_s: float
) -> list[Job]:
    """Withdraw the jobs among `message_ids` that wait for a worker; returns those that
    were (their payload, for the aborted turn to be stored; a job queued by a version
    before this one is withdrawn but not returned). Raises `RedisError`/`OSError`."""
    pipe = redis.pipeline(transaction=False)
    for message_id in message_ids:
        pipe.hmget(keys.run(message_id), *_FACTS)
    facts = await pipe.execute()
    error = RunCancelled()
    frames = (
        numbered(2, ErrorEvent(error.code, str(error))),
        numbered(3, EndEvent()),
    )
    pipe = redis.pipeline(transaction=False)
    for message_id, (chatflow, chat, session, relay) in zip(message_ids, facts, strict=True):
        if chatflow is None or chat is None:
            continue  # no such run, or it ended long ago
        chatflow_id, chat_id = chatflow.decode(), chat.decode()
        events = keys.events(message_id)
        pipe.eval(
            _WITHDRAW,
            7,
            keys.run(message_id),
            keys.jobs,
            keys.queued(chatflow_id),
            keys.chat(chatflow_id, chat_id),
            events,
            keys.turn(chatflow_id, (session or chat).decode()),
            keys.relay(relay.decode()) if relay else events,
            message_id,
            *frames,
            max(int(retention_s), 1),
            WITHDRAWN,
        )
    withdrawn = []
    for reply in await pipe.execute():
        if isinstance(reply, bytes):
            withdrawn.append(Job.loads(reply))
    return withdrawn
