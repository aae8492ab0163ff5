"""Health, readiness and Prometheus metrics; a request counter that costs nothing per
streamed token beyond one function call."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tailwinds.logs import REQUEST_ID
from tailwinds.metrics import ASYNC_TASKS, HTTP_REQUESTS, QUEUE_DEPTH, REGISTRY
from tailwinds.server.errors import json_response
from tailwinds.server.model_check import check_models
from tailwinds.server.request_id import request_id_of

router = APIRouter(tags=["operations"])


@router.get("/api/v1/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/api/v1/ready")
async def ready(request: Request, models: bool = False) -> Response:
    """Readiness: the database answers, and in queue mode Redis too. With `models=true`,
    also every model server the chatflows name (a TCP connection) and the local model."""
    state = request.app.state.tailwinds
    checks: dict[str, str] = {}
    started = time.perf_counter()
    try:
        async with state.db.engine.connect() as conn:
            await conn.execute(text("select 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    checks.update(await state.predictions.transport.checks())
    if models:
        for name, outcome in (await check_models(state.predictions, state.chatflows)).items():
            checks[f"model {name}"] = outcome
    ok = all(v == "ok" for v in checks.values())
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": checks,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return json_response(body, status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    ASYNC_TASKS.set(len(asyncio.all_tasks()))
    depth = await request.app.state.tailwinds.predictions.transport.depth()
    if depth is not None:
        QUEUE_DEPTH.set(depth)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """Counts requests by route template and status, and gives each a request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        request_id = request_id_of(scope)
        token = REQUEST_ID.set(request_id.decode())

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            REQUEST_ID.reset(token)
            route = scope.get("route")
            HTTP_REQUESTS.labels(getattr(route, "path", "unmatched"), str(status)).inc()
