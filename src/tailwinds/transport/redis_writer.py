"""Run events into Redis Streams: a worker appends each run's frames to the run's own
stream (`Keys.events`, entry `0-n` holding the frame with `id: n`, what a resume reads)
and, for a run its API node relays live, to that node's relay stream (`Keys.relay`).

Writes are batched across runs: one script per turn of the event loop carries every
frame produced meanwhile, in order (see `redis_events.EventReader` for the other side).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from tailwinds.transport.keys import Keys
from tailwinds.transport.resp import HeldConnection, Script, bulk

# a relay stream outlives its API node by this long (s): its reader trims it as it reads
RELAY_TTL_S = 3600


# KEYS: per run, its event stream, its facts, and the relay stream of the API node that
# relays it live (its event stream again when none). ARGV[1] the streams' bound
# (approximate MAXLEN), ARGV[2] their retention once ended (s), then per run: how many
# frames, whether the last is `end`, whether it is relayed, its message id, and each
# frame's entry id and bytes. Each XADD on its own, as in a pipeline: the errors come back
# in a list, the other frames are written. A frame already at its entry id is no error:
# the client sends a batch again when its reply was lost (a dropped connection), and the
# entry ids make that a no-op on the run's stream (its reader drops the relay stream's
# repeat). A relayed run's frames of the batch also go to its node's relay stream as one
# entry (`m` message id, `a`/`z` the first and last entry ids, `f` the frames joined, `e`
# when it ended). A run whose stream is gone when frames after `start` (entry 0-1,
# written with its job) come is written nothing and named in a second list: Redis lost
# its data (a restart without persistence), and the run's client with it.
_APPEND = Script(
    """
local maxlen, ttl, a, failed, gone = ARGV[1], ARGV[2], 3, {}, {}
for k = 1, #KEYS, 3 do
  local n, ended, relayed = tonumber(ARGV[a]), ARGV[a + 1] == '1', ARGV[a + 2] == '1'
  local mid, b = ARGV[a + 3], a + 4
  local first = ARGV[b]
  a = b + 2 * n
  if first ~= '0-1' and redis.call('EXISTS', KEYS[k]) == 0 then
    gone[#gone + 1] = mid
  else
    local frames = {}
    for j = 1, n do
      local id, frame, r = ARGV[b], ARGV[b + 1], nil
      if ended and j == n then
        r = redis.pcall('XADD', KEYS[k], 'MAXLEN', '~', maxlen, id, 'f', frame, 'e', '1')
      else
        r = redis.pcall('XADD', KEYS[k], 'MAXLEN', '~', maxlen, id, 'f', frame)
      end
      if type(r) == 'table' and r.err then
        -- the same frame at that id already: this batch again, after its reply was lost
        local there = redis.call('XRANGE', KEYS[k], id, id)
        if #there == 0 or there[1][2][2] ~= frame then failed[#failed + 1] = r.err end
      end
      frames[j] = frame
      b = b + 2
    end
    if relayed then
      local r
      if ended then
        r = redis.pcall('XADD', KEYS[k + 2], '*', 'm', mid, 'a', first, 'z', ARGV[b - 2],
                        'f', table.concat(frames), 'e', '1')
      else
        r = redis.pcall('XADD', KEYS[k + 2], '*', 'm', mid, 'a', first, 'z', ARGV[b - 2],
                        'f', table.concat(frames))
      end
      if type(r) == 'table' and r.err then failed[#failed + 1] = r.err end
      redis.call('EXPIRE', KEYS[k + 2], RELAY_TTL_S)
    end
    if ended then
      redis.call('EXPIRE', KEYS[k], ttl)
      redis.call('EXPIRE', KEYS[k + 1], ttl)
    end
  end
end
return {failed, gone}
""".replace("RELAY_TTL_S", str(RELAY_TTL_S))
)
_FLAGS = (bulk(b"0"), bulk(b"1"))


class EventWriter:
    """Appends frames to run streams: the frames of one turn of the event loop, of every
    run, go in one `EVALSHA`; one in flight at a time keeps them in order."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        max_len: int,
        retention_s: float,
        on_failure: Callable[[BaseException], None],
        on_gone: Callable[[str], None] | None = None,
    ) -> None:
        """`on_failure`: called when a flush fails (every frame appended until then may
        be lost); `on_gone`: with the message id of a run whose stream Redis no longer
        holds (its frames are dropped)."""
        self._conn = HeldConnection(redis)  # one flush in flight at a time
        self.keys = keys
        self._bounds = (bulk(b"%d" % max_len), bulk(b"%d" % int(max(retention_s, 1))))
        self.on_failure = on_failure
        self.on_gone = on_gone
        self._pending: list[tuple[str, int, bytes, bool]] = []
        # by message id: its API node's relay stream (a bulk string), and the run's own
        # names (its event stream, its facts, its id) packed once, not at every flush
        self._relays: dict[str, bytes] = {}
        self._named: dict[str, tuple[bytes, bytes, bytes]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    def relay(self, message_id: str, node_id: str | None) -> None:
        """The run's frames also go to the relay stream of API node `node_id` (`Job.relay`)
        from now on; None: no more (the run is over)."""
        if node_id is None:
            self._relays.pop(message_id, None)
            self._named.pop(message_id, None)
        else:
            self._relays[message_id] = bulk(self.keys.relay(node_id).encode())

    def append(self, message_id: str, seq: int, frame: bytes, end: bool = False) -> None:
        """Frame number `seq` of a run; the last (`end`) expires its streams."""
        self._pending.append((message_id, seq, frame, end))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def synced(self) -> None:
        """Wait until what was appended so far is in Redis (raises if it cannot be)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        if self._error is not None:
            raise self._error

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            runs: dict[str, list[bytes]] = {}
            ended: set[str] = set()
            for message_id, seq, frame, end in batch:
                frames = runs.get(message_id)
                if frames is None:
                    frames = runs[message_id] = []
                frames += (b"$%d\r\n0-%d\r\n" % (len(b"0-%d" % seq), seq), bulk(frame))
                if end:
                    ended.add(message_id)
            keys: list[bytes] = []
            args: list[bytes] = [*self._bounds]
            named_by = self._named
            for message_id, frames in runs.items():
                relay = self._relays.get(message_id)
                named = named_by.get(message_id)
                if named is None:
                    named = (
                        bulk(self.keys.events(message_id).encode()),
                        bulk(self.keys.run(message_id).encode()),
                        bulk(message_id.encode()),
                    )
                    if relay is not None:  # kept while relayed: `relay(.., None)` drops it
                        named_by[message_id] = named
                keys += (named[0], named[1], named[0] if relay is None else relay)
                args += (
                    bulk(b"%d" % (len(frames) // 2)),
                    _FLAGS[message_id in ended],
                    _FLAGS[relay is not None],
                    named[2],
                    *frames,
                )
            for message_id in ended:
                named_by.pop(message_id, None)
            try:
                failed, gone = await _APPEND.run(self._conn, keys, args)
                if failed:
                    raise ResponseError(_text(failed[0]))
                self._error = None
                for message_id in gone:
                    named_by.pop(_text(message_id), None)
                    if self.on_gone is not None:
                        self.on_gone(_text(message_id))
            except (RedisError, OSError) as exc:
                self._pending.clear()
                self._error = exc
                self.on_failure(exc)
                return


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
