"""Queue mode's `ApprovalDesk` (engine/approvals.py): a decision posted to any API node
reaches the worker that holds the run.

Keys (under the configured prefix):

- `<p>:action:<actionId>`: the open action's facts `{"chatflowId", "runId"}`, written by
  the worker before its `action` event goes out; kept until after its expiry.
- `<p>:action:<actionId>:decision`: the one decision, `SET NX`: the first of a person's
  decision, the worker's `expired` (at the expiry) or `closed` (the run ended) wins; a
  second gets `ActionClosed` (409).

An API node that sets the decision adds `{"action": <actionId>}` to the control stream
(`<p>:control`, which every worker reads for aborts). A worker with waiting actions reads
that stream too, blocking (one wakeup per 5 s of quiet, no polling of keys), and resolves
the action it holds from the decision key. It starts reading from the stream's last entry
before the action's event is sent, so no decision can slip past; after a lost connection
it reads every decision key of its waiting actions once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tailwinds.background import BackgroundTasks
from tailwinds.engine.approvals import CLOSED, EXPIRED, Action, Decision
from tailwinds.errors import ActionClosed, ActionNotFound
from tailwinds.transport.keys import Keys

logger = logging.getLogger("tailwinds.transport")

# an action's keys outlive its expiry by this much, so a late decision gets 409, not 404
KEEP_AFTER_EXPIRY_S = 3600
BLOCK_MS = 5000
CONTROL_MAX_LEN = 10_000


class RedisApprovals:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.prefix = keys.prefix
        self.control = keys.control
        self._waiting: dict[str, asyncio.Future[Decision]] = {}
        self._open: dict[str, Action] = {}  # opened here and not settled yet
        self._runs: dict[str, int] = {}  # open actions by run id: the waiting runs
        self._listener: asyncio.Task[None] | None = None
        self._background = BackgroundTasks()

    def _action_key(self, action_id: str) -> str:
        return f"{self.prefix}:action:{action_id}"

    def _decision_key(self, action_id: str) -> str:
        return f"{self.prefix}:action:{action_id}:decision"

    @property
    def waiting_runs(self) -> int:
        return len(self._runs)

    # -- the worker's side ------------------------------------------------------------

    async def open(self, action: Action, max_waiting_runs: int) -> bool:
        if action.run_id not in self._runs and len(self._runs) >= max_waiting_runs:
            return False
        facts = orjson.dumps({"chatflowId": action.chatflow_id, "runId": action.run_id})
        ttl_s = int(action.timeout_s) + KEEP_AFTER_EXPIRY_S
        await self.redis.set(self._action_key(action.action_id), facts, ex=ttl_s)
        self._open[action.action_id] = action
        self._runs[action.run_id] = self._runs.get(action.run_id, 0) + 1
        self._waiting[action.action_id] = asyncio.get_running_loop().create_future()
        if self._listener is None or self._listener.done():
            last = await self._last_control_entry()
            self._listener = asyncio.create_task(self._listen(last))
        return True

    async def wait(self, action: Action) -> Decision:
        future = self._waiting.get(action.action_id)
        if future is None:
            return CLOSED
        try:
            async with asyncio.timeout(action.timeout_s):
                return await asyncio.shield(future)
        except TimeoutError:
            if future.done():
                return future.result()
            return await self._settle(action, EXPIRED)
        except asyncio.CancelledError:
            # the run was aborted: a decision after this gets 409 (in the background: the
            # run's cancellation must not wait for Redis)
            self._background.spawn(self._settle(action, CLOSED))
            raise
        finally:
            self._forget(action)

    def close(self, action: Action) -> None:
        if action.action_id in self._open:
            self._forget(action)
            self._background.spawn(self._settle(action, CLOSED))

    async def _settle(self, action: Action, decision: Decision) -> Decision:
        """Write the worker's own outcome unless a person's came first; the one that won."""
        key = self._decision_key(action.action_id)
        ttl_s = KEEP_AFTER_EXPIRY_S
        try:
            if await self.redis.set(key, orjson.dumps(decision.as_json()), ex=ttl_s, nx=True):
                return decision
            raw = await self.redis.get(key)
        except (RedisError, OSError) as exc:
            logger.warning("could not settle action %s: %s", action.action_id, exc)
            return decision
        return Decision.from_json(orjson.loads(raw)) if raw else decision

    def _forget(self, action: Action) -> None:
        self._waiting.pop(action.action_id, None)
        if self._open.pop(action.action_id, None) is None:
            return
        left = self._runs.get(action.run_id, 1) - 1
        if left > 0:
            self._runs[action.run_id] = left
        else:
            self._runs.pop(action.run_id, None)

    async def _last_control_entry(self) -> bytes:
        newest: Any = await self.redis.xrevrange(self.control, count=1)
        return bytes(newest[0][0]) if newest else b"0-0"

    async def _listen(self, last: bytes) -> None:
        """Read the control stream while actions wait here; resolve those decided."""
        while self._waiting:
            try:
                reply: Any = await self.redis.xread({self.control: last}, block=BLOCK_MS)
            except (RedisError, OSError) as exc:
                logger.debug("reading decisions failed: %s", exc)
                await asyncio.sleep(1)
                await self._read_all()  # what came while the connection was gone
                continue
            for _, entries in reply or ():
                for entry_id, fields in entries:
                    last = entry_id
                    action_id = fields.get(b"action")
                    if action_id is not None and action_id.decode() in self._waiting:
                        await self._read(action_id.decode())

    async def _read_all(self) -> None:
        for action_id in list(self._waiting):
            try:
                await self._read(action_id)
            except (RedisError, OSError):
                return

    async def _read(self, action_id: str) -> None:
        raw = await self.redis.get(self._decision_key(action_id))
        future = self._waiting.get(action_id)
        if raw and future is not None and not future.done():
            future.set_result(Decision.from_json(orjson.loads(raw)))

    # -- the API node's side ----------------------------------------------------------

    async def decide(self, chatflow_id: str, action_id: str, decision: Decision) -> str:
        raw = await self.redis.get(self._action_key(action_id))
        facts = orjson.loads(raw) if raw else None
        if not isinstance(facts, dict) or facts.get("chatflowId") != chatflow_id:
            raise ActionNotFound(f"no action {action_id!r} waits in this chatflow")
        key = self._decision_key(action_id)
        ttl_s = max(1, await self.redis.ttl(self._action_key(action_id)))
        # marked as this call's own: when the reply to the SET was lost and the client sent
        # it again, what it finds there is its own decision, not someone else's
        mine = orjson.dumps({**decision.as_json(), "by": uuid.uuid4().hex})
        there = await self.redis.set(key, mine, ex=ttl_s, nx=True, get=True)
        if there is not None and there != mine:
            raise ActionClosed(f"action {action_id!r} was decided already, or it ended")
        await self.redis.xadd(
            self.control, {b"action": action_id}, maxlen=CONTROL_MAX_LEN, approximate=True
        )
        return str(facts.get("runId", ""))
