"""Counts in Redis that a call sent again changes once.

redis-py sends a command again on a new connection when the old one died (the client's
`Retry`, `queue.RECONNECTS`), which is also what happens when Redis ran the command and
only its reply was lost: an `INCR` or `DECR` sent twice counts twice. Here each change
carries a mark of its own, set with `SET NX` in the same script: the second send finds it
and changes nothing. Used for the running slots of rate limits, the readers of a run, a
chatflow's queued jobs and a claimed job's attempts.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

# how long a change's mark outlives it (ms): far past the client's retries (~1.3 s)
MARK_MS = 60_000

# KEYS: the count, the change's mark. ARGV: by how much, the mark's life (ms), the count's
# expiry (s, 0: left as it is). Returns the count after the change (or as it is, when the
# mark says the change was made already). A count taken down to 0 or below is deleted: a
# give-back after Redis lost the count (a restart without persistence) leaves no debt, as
# a count of -3 would (a queue's cap three over, with no expiry, for good).
_COUNT_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
  local n = redis.call('INCRBY', KEYS[1], ARGV[1])
  if tonumber(ARGV[1]) < 0 and n <= 0 then
    redis.call('DEL', KEYS[1])
    return 0
  end
  if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
  return n
end
return tonumber(redis.call('GET', KEYS[1]) or '0')
"""


def count_once(client: Redis | Pipeline, key: str, mark: str, by: int, expire_s: int = 0) -> Any:
    """Change count `key` by `by` once for `mark` (a key of its own, unique to the change).
    On a client: an awaitable of the count after it; on a pipeline: queued, its reply the
    same."""
    return client.eval(_COUNT_ONCE, 2, key, mark, by, MARK_MS, expire_s)
