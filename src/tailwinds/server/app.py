"""The FastAPI application: made by `create_app(settings)`, with everything it needs
opened in its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tailwinds import __version__, heap
from tailwinds.config import Settings
from tailwinds.offload import CLIENT
from tailwinds.runs.chatflow_access import CHATFLOW_MAX_AGE_S
from tailwinds.server import observability
from tailwinds.server.body_limit import BodyLimit
from tailwinds.server.cors import ChatflowCORS
from tailwinds.server.cross_site import CrossSiteGuard
from tailwinds.server.direct_routes import direct_routes
from tailwinds.server.errors import ERROR_RESPONSES, install_error_handlers
from tailwinds.server.first_start import create_first_chatflow
from tailwinds.server.hosts import HostCheck, allowed_hosts
from tailwinds.server.mcp import McpEndpoint
from tailwinds.server.observability import RequestMetrics
from tailwinds.server.pacing import RequestPacing
from tailwinds.server.routes import (
    actions,
    apikeys,
    chatflows,
    credentials,
    docs,
    document_stores,
    feedback,
    flowise,
    openai,
    predictions,
    system,
    transfer,
    ui_protocols,
    web,
)
from tailwinds.server.state import AppState, open_state
from tailwinds.server.streaming import RAW_SEND

logger = logging.getLogger("tailwinds.server")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    mcp = McpEndpoint(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_state(settings) as state, mcp.serving(state.predictions):
            app.state.tailwinds = state
            await create_first_chatflow(state.chatflows, settings)
            _warm_routes(app)
            if not settings.admin_token:
                logger.warning(
                    "TAILWINDS_ADMIN_TOKEN is not set: management calls are accepted only "
                    "from this machine (loopback addresses), and only requests naming "
                    "localhost, an IP address or TAILWINDS_ALLOWED_HOSTS in `Host` are served"
                )
            logger.info(
                "Tailwinds %s ready (%s mode), database %s",
                __version__,
                settings.mode,
                state.db.url.render_as_string(),
            )
            heap.settle()
            yield

    app = TailwindsAPI(
        title="Tailwinds",
        version=__version__,
        summary="Run LLM chatflows and stream their answers as server-sent events.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        # served from installed files by routes/docs.py, not from FastAPI's CDN
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    # the prediction routes first: routes are matched in order, and theirs are the busy ones
    for module in (
        predictions,
        actions,
        flowise,
        feedback,
        openai,
        ui_protocols,
        system,
        observability,
        chatflows,
        apikeys,
        credentials,
        document_stores,
        transfer,
    ):
        app.include_router(module.router)
    # the busy routes' direct twins in front of everything (server/direct_routes.py)
    app.router.routes[:0] = direct_routes(
        [predictions.router, flowise.router, openai.router, ui_protocols.router]
    )
    app.include_router(document_stores.flowise_router)
    app.include_router(docs.router)
    app.router.routes.append(Route("/mcp", endpoint=mcp))  # chatflows as MCP tools
    app.include_router(web.router)
    app.mount("/assets", web.assets(), name="assets")
    # the last added runs first: metrics, Host, CORS, cross-site, body limit, then routes;
    # all of them act on the request's head, before any route reads the body
    app.add_middleware(
        BodyLimit,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(CrossSiteGuard)
    app.add_middleware(
        ChatflowCORS,
        origins_for=_chatflow_origins,
        default=[o.strip() for o in settings.cors_origins.split(",") if o.strip()],
    )
    app.add_middleware(
        HostCheck, patterns=allowed_hosts(settings.allowed_hosts, settings.admin_token)
    )
    app.add_middleware(RequestMetrics)
    if settings.tracing == "on":  # outermost: the request's span holds everything
        from tailwinds.tracing.http import TraceRequests

        app.add_middleware(TraceRequests)
    return app


# the middlewares, outermost first, that the raw send was measured with and that look only
# at a response's start, never at its body chunks (bench.run; see TailwindsAPI.__call__)
MEASURED_MIDDLEWARES = (RequestMetrics, HostCheck, ChatflowCORS, CrossSiteGuard, BodyLimit)


def raw_send_safe(app: FastAPI) -> bool:
    """Whether the app's middleware stack is exactly the measured one: any other middleware
    (gzip, tracing, a test's recorder) may look at body chunks, and must get them all."""
    # Starlette keeps user middlewares outermost first (add_middleware inserts at 0)
    return tuple(m.cls for m in app.user_middleware) == MEASURED_MIDDLEWARES


class TailwindsAPI(FastAPI):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pacing = RequestPacing()
        # decided when Starlette builds the middleware stack (the first call: the lifespan)
        self.raw_send = False

    def build_middleware_stack(self) -> ASGIApp:
        self.raw_send = raw_send_safe(self)
        if not self.raw_send:
            logger.info("middlewares other than Tailwinds' own: stream chunks go through them")
        return super().build_middleware_stack()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            CLIENT.set(client[0] if client else None)  # this request's task only
            await self.pacing.turn()  # new requests yield to running streams
            # the SSE response writes its body chunks with the server's own `send`, past
            # the middlewares' wrappers, which only look at the response's start: three
            # coroutine calls less per token; only with the measured middlewares
            if self.raw_send:
                scope[RAW_SEND] = send
        await super().__call__(scope, receive, send)


def _warm_routes(app: FastAPI) -> None:
    """FastAPI builds each included route's handler state on the first request that walks
    past it (~100 ms for all of ours): do it now, not in a user's first prediction."""
    scope = {"type": "http", "method": "GET", "path": "/__warm__", "root_path": "", "headers": []}
    for route in app.router.routes:
        route.matches(scope)


async def _chatflow_origins(scope: Scope, chatflow_id: str) -> list[str] | None:
    state: AppState = scope["app"].state.tailwinds
    chatflow = await state.chatflows.get(chatflow_id, max_age_s=CHATFLOW_MAX_AGE_S)
    if chatflow is None and scope["path"].startswith(FEEDBACK_PATH):
        owner = await feedback.feedback_chatflow(state, chatflow_id)  # PUT /feedback/{id}
        chatflow = await state.chatflows.get(owner) if owner else None
    return chatflow.allowed_origins if chatflow is not None else None


FEEDBACK_PATH = "/api/v1/feedback/"
