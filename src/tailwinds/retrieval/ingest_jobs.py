"""Upserts run off the request path: a job id at once, its progress (chunks embedded of
all) on request, its outcome when it is over. Kept in this process for an hour."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tailwinds import tracing
from tailwinds.background import BackgroundTasks
from tailwinds.errors import NotFound, TailwindsError

logger = logging.getLogger("tailwinds.documents")

KEEP_S = 3600.0
MAX_KEPT = 1000

Progress = Callable[[int, int], None]


@dataclass(slots=True)
class IngestJob:
    id: str
    store_id: str
    status: str = "running"  # running | done | failed
    done: int = 0
    total: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    ended_at: float | None = None
    started_at: float = field(default_factory=time.monotonic)

    def as_json(self) -> dict[str, Any]:
        return {
            "jobId": self.id,
            "storeId": self.store_id,
            "status": self.status,
            "done": self.done,
            "total": self.total,
            "result": self.result,
            "error": self.error,
        }


class IngestJobs:
    def __init__(self) -> None:
        self._jobs: dict[str, IngestJob] = {}
        self._tasks = BackgroundTasks()

    def start(
        self, store_id: str, work: Callable[[Progress], Awaitable[dict[str, Any]]]
    ) -> IngestJob:
        self._forget_old()
        job = IngestJob(uuid.uuid4().hex, store_id)
        self._jobs[job.id] = job

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        async def run() -> None:
            try:
                job.result = await tracing.traced_ingest(store_id, job.id, work(progress))
                job.status = "done"
            except TailwindsError as exc:
                job.status, job.error = "failed", {"error": exc.message, "code": exc.code}
            except Exception as exc:
                logger.exception("ingestion job %s failed", job.id)
                job.status = "failed"
                job.error = {
                    "error": f"the upsert failed: {type(exc).__name__}",
                    "code": "internal",
                }
            finally:
                job.ended_at = time.monotonic()

        self._tasks.spawn(run())
        return job

    def get(self, store_id: str, job_id: str) -> IngestJob:
        job = self._jobs.get(job_id)
        if job is None or job.store_id != store_id:
            raise NotFound(
                f"no ingestion job {job_id} for store {store_id} here (jobs are kept an hour, "
                "by the node that runs them)"
            )
        return job

    def _forget_old(self) -> None:
        now = time.monotonic()
        for job_id, job in list(self._jobs.items()):
            if job.ended_at is not None and (
                now - job.ended_at > KEEP_S or len(self._jobs) > MAX_KEPT
            ):
                del self._jobs[job_id]

    async def drain(self) -> None:
        await self._tasks.drain()
