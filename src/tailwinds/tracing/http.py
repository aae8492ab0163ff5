"""The HTTP request's span (SERVER), child of the client's `traceparent` when it sends
one; named and attributed as the HTTP semantic conventions say (`{method} {http.route}`).
Installed by `create_app` only when tracing is on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, StatusCode

from tailwinds import tracing

if TYPE_CHECKING:  # annotations only: the HTTP layer (server/) is Starlette's one user
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_HEADER = 512  # characters of a header kept as an attribute
# probes a load balancer or Prometheus calls every few seconds: no trace of their own
UNTRACED = frozenset({"/api/v1/ping", "/api/v1/health", "/api/v1/ready", "/metrics"})


class TraceRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        spans = tracing._spans
        if scope["type"] != "http" or spans is None or scope.get("path") in UNTRACED:
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            if name in (b"traceparent", b"tracestate", b"baggage", b"user-agent"):
                headers[name.decode()] = value.decode("latin-1")[:MAX_HEADER]
        method = scope.get("method", "GET")
        attributes = {
            "http.request.method": method,
            "url.path": scope.get("path", "")[:MAX_HEADER],
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        if "user-agent" in headers:
            attributes["user_agent.original"] = headers["user-agent"]
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with spans.TRACER.start_as_current_span(
            method,
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            attributes=attributes,
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                dialect = tracing.DIALECT.get()  # set by a dialect's route, in this context
                if dialect:
                    span.set_attribute("tailwinds.dialect", dialect)
                route = getattr(scope.get("route"), "path", None)
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_attribute("error.type", str(status))
                    span.set_status(StatusCode.ERROR)
