"""The HTTP request's span in-process (an in-memory exporter): named by the route
template, child of the caller's `traceparent`, the dialect a route set, probes untraced."""

# ruff: noqa: E402
from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.requirements import require_module

# the OpenTelemetry imports below need the `dev` extra: skipped (failed under CI) without
require_module("opentelemetry.sdk", "pip install -e '.[dev]' (the `tracing` extra)")
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import tailwinds.tracing as tracing
from tailwinds.tracing import spans
from tailwinds.tracing.http import TraceRequests


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    old = spans.TRACER
    spans.TRACER = provider.get_tracer("test")
    tracing._spans = spans
    yield exporter
    tracing._spans = None
    spans.TRACER = old


async def openai_style(request: Request) -> PlainTextResponse:
    tracing.DIALECT.set("openai")
    return PlainTextResponse("ok")


async def broken(request: Request) -> PlainTextResponse:
    return PlainTextResponse("no", status_code=503)


APP = TraceRequests(
    Starlette(
        routes=[
            Route("/v1/chat/{chatflow_id}", openai_style, methods=["POST"]),
            Route("/broken", broken),
            Route("/api/v1/health", broken),
        ]
    )
)


def call(method: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=APP, client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, headers=headers)

    return asyncio.run(go())


def test_the_request_span(exported: InMemorySpanExporter) -> None:
    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    call("POST", "/v1/chat/abc", {"traceparent": f"00-{trace_id}-{parent}-01"})
    (span,) = exported.get_finished_spans()
    assert span.name == "POST /v1/chat/{chatflow_id}"
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.parent is not None and format(span.parent.span_id, "016x") == parent
    attributes = dict(span.attributes or {})
    assert attributes["http.route"] == "/v1/chat/{chatflow_id}"
    assert attributes["http.response.status_code"] == 200
    assert attributes["client.address"] == "203.0.113.9"
    assert attributes["tailwinds.dialect"] == "openai"


def test_a_server_error_and_the_probes(exported: InMemorySpanExporter) -> None:
    call("GET", "/broken")
    call("GET", "/api/v1/health")  # a probe: no span
    (span,) = exported.get_finished_spans()
    assert span.name == "GET /broken"
    assert span.status.status_code.name == "ERROR"
    assert dict(span.attributes or {})["error.type"] == "503"
    assert "tailwinds.dialect" not in dict(span.attributes or {})
