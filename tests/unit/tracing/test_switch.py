"""Tracing's switch (TAILWINDS_TRACING, or the standard OTEL_* environment) and its cost
when off: no tracer, exporter or span module imported, no middleware, no span, a model's
stream untouched."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tailwinds.config import Settings


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "off"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "on"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "on"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, "off"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, "off"),
        ({"TAILWINDS_TRACING": "on"}, "on"),
        ({"TAILWINDS_TRACING": "off", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "off"),
    ],
)
def test_the_switch(environ: dict[str, str], expected: str) -> None:
    assert Settings.from_env(environ).tracing == expected


def test_a_bad_switch_is_named() -> None:
    with pytest.raises(ValueError, match="TAILWINDS_TRACING: expected one of auto, on, off"):
        Settings.from_env({"TAILWINDS_TRACING": "yes please"})


def test_content_is_opt_in() -> None:
    assert Settings.from_env({}).trace_content is False
    assert Settings.from_env({"TAILWINDS_TRACE_CONTENT": "true"}).trace_content is True


# run in a fresh interpreter: what this one imported for other tests does not count
OFF = textwrap.dedent(
    """
    import asyncio, sys
    from types import SimpleNamespace

    from tailwinds import tracing
    from tailwinds.config import Settings
    from tailwinds.engine.context import RunContext, Turn
    from tailwinds.engine.runner import FlowRunner
    from tailwinds.engine.runs import RunRegistry
    from tailwinds.nodes.models import ChatOpenAI
    from tailwinds.server.app import create_app
    import tailwinds.worker

    settings = Settings(tracing="off")
    app = create_app(settings)
    assert "TraceRequests" not in [m.cls.__name__ for m in app.user_middleware]
    tracing.configure(settings)
    assert not tracing.enabled()

    stream = object()
    provider = SimpleNamespace(stream_chat=lambda request: stream)
    node = ChatOpenAI("m", ChatOpenAI.Inputs(model="x"), {})
    resources = SimpleNamespace(settings=settings, wire=None)
    ctx = RunContext(Turn("q", "c", "c", "m"), resources)
    assert tracing.traced_chat(ctx, node, None, provider) is stream  # the provider's own

    class Answer:
        async def answer(self, ctx):
            yield "a"
            yield "b"

    async def run():
        async def record(result):
            assert result.span is None
        flow = SimpleNamespace(answer=Answer())
        events = FlowRunner(resources).run("f", flow, ctx, RunRegistry(), record)
        return [type(e).__name__ async for e in events]

    assert asyncio.run(run())[:3] == ["StartEvent", "TokenEvent", "TokenEvent"]
    assert ctx.span is None
    # (FastAPI imports the OpenTelemetry API for itself when it is installed)
    ours = ("tailwinds.tracing.", "opentelemetry.sdk.trace", "opentelemetry.exporter")
    loaded = sorted(m for m in sys.modules if m.startswith(ours))
    assert not loaded, loaded
    print("ok")
    """
)


def test_off_costs_no_import_no_middleware_no_span() -> None:
    result = subprocess.run(
        [sys.executable, "-c", OFF], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_a_job_carries_its_trace_only_when_there_is_one() -> None:
    from tailwinds.transport.jobs import Job

    job = Job("f", "m", "c", "s", "q", None)
    assert b"trace" not in job.dumps()  # what a worker from before traces reads too
    job.trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert Job.loads(job.dumps()) == job
