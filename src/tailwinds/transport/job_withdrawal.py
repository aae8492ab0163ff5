"""An abort of a job that no worker has begun: withdrawn from the jobs stream where it
waits, at once, instead of when a worker comes free to find it aborted. Its places (the
queue's, its chatflow's, its chat's lease and set of runs) are given back in the same
script, and its stream ends as a run stopped by an abort does: `error` `aborted`, `end`,
on its own stream (what a resume reads) and on the relay stream of the API node that
relays it live."""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from tailwinds.engine.events import EndEvent, ErrorEvent
from tailwinds.errors import RunCancelled
from tailwinds.transport.frames import numbered
from tailwinds.transport.job_entries import WITHDRAWN
from tailwinds.transport.jobs import Job
from tailwinds.transport.keys import RUN_TTL_S, Keys
from tailwinds.transport.redis_writer import RELAY_TTL_S

# KEYS: the run's facts, the jobs stream, its chatflow's count of jobs, its chat's set of
# runs, its event stream, its chat's lease, the relay stream of its API node (its event
# stream again when none), its withdrawal's mark (`Keys.withdrawn`). ARGV: its message id,
# the `error` and `end` frames, the streams' retention (s), the mark of a withdrawn job
# (`WITHDRAWN`), the relay stream's expiry (s), the withdrawal mark's (s). Everything is
# checked before anything changes: a worker that begins a job takes the run's `entry`
# first (HSETNX, `JobEntries`), so a taken `entry`, a frame after `start` or a job entry
# gone means a worker has it, and its abort mark stops it. A job queued by an earlier
# version (no `queued`) is left to its mark as well. Returns the job's payload (again
# when it was withdrawn already: an abort sent twice, its first reply lost), false when
# it was not withdrawn.
_WITHDRAW = """
local queued = redis.call('HGET', KEYS[1], 'queued')
if not queued then return false end
local owner = redis.call('HGET', KEYS[1], 'entry')
if owner == ARGV[5] then return redis.call('HGET', KEYS[1], 'job') end
if owner then return false end
local last = redis.call('XREVRANGE', KEYS[5], '+', '-', 'COUNT', 1)
if not last[1] or last[1][1] ~= '0-1' then return false end
local found = redis.call('XRANGE', KEYS[2], queued, queued)
if not found[1] then return false end
local job = found[1][2][2]
redis.call('HSET', KEYS[1], 'entry', ARGV[5], 'job', job)
redis.call('XDEL', KEYS[2], queued)
if redis.call('DECR', KEYS[3]) <= 0 then redis.call('DEL', KEYS[3]) end
redis.call('SREM', KEYS[4], ARGV[1])
if redis.call('GET', KEYS[6]) == ARGV[1] then redis.call('DEL', KEYS[6]) end
redis.call('XADD', KEYS[5], '0-2', 'f', ARGV[2])
redis.call('XADD', KEYS[5], '0-3', 'f', ARGV[3], 'e', '1')
redis.call('EXPIRE', KEYS[5], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[8], '1', 'EX', ARGV[7])
if KEYS[7] ~= KEYS[5] then
  redis.call('XADD', KEYS[7], '*', 'm', ARGV[1], 'a', '0-2', 'z', '0-3',
             'f', ARGV[2] .. ARGV[3], 'e', '1')
  redis.call('EXPIRE', KEYS[7], ARGV[6])
end
return job
"""

_FACTS = ("chatflow", "chat", "session", "relay")

logger = logging.getLogger("tailwinds.transport")


async def withdraw(
    redis: Redis, keys: Keys, message_ids: list[str], retention_s: float
) -> list[Job]:
    """Withdraw the jobs among `message_ids` that wait for a worker; returns those that
    were, for their aborted turns to be stored. Raises `RedisError`/`OSError` when Redis
    cannot be reached (a run whose script fails is logged, the others go on)."""
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
            8,
            keys.run(message_id),
            keys.jobs,
            keys.queued(chatflow_id),
            keys.chat(chatflow_id, chat_id),
            events,
            keys.turn(chatflow_id, (session or chat).decode()),
            keys.relay(relay.decode()) if relay else events,
            keys.withdrawn(message_id),
            message_id,
            *frames,
            max(int(retention_s), 1),
            WITHDRAWN,
            RELAY_TTL_S,
            RUN_TTL_S,
        )
    withdrawn = []
    # one run's failure (a key of another type) must not keep the others' from going
    for reply in await pipe.execute(raise_on_error=False):
        if isinstance(reply, bytes):
            withdrawn.append(Job.loads(reply))
        elif isinstance(reply, Exception):
            logger.warning("a queued job could not be withdrawn: %s", reply)
    return withdrawn
