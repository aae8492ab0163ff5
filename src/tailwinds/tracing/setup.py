"""The tracer provider, as the OTEL_* environment configures it (the SDK reads it:
OTEL_EXPORTER_OTLP_ENDPOINT / _TRACES_ENDPOINT, _HEADERS, _TIMEOUT, OTEL_SERVICE_NAME,
OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER / _ARG, OTEL_BSP_*): spans batched on the
SDK's own thread and sent as OTLP/HTTP protobuf, so an unreachable collector costs the
event loop nothing (spans past the batch queue are dropped, not waited for)."""

from __future__ import annotations

try:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise RuntimeError(
        "tracing is on (TAILWINDS_TRACING or OTEL_EXPORTER_OTLP_ENDPOINT) but OpenTelemetry "
        "is not installed: pip install 'tailwinds[tracing]'"
    ) from exc

from tailwinds import __version__


def tracer_provider() -> TracerProvider:
    """Our own provider, not the global one: `create_app` may run twice in a process."""
    resource = Resource.create({SERVICE_VERSION: __version__})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "tailwinds"}))
    provider = TracerProvider(resource=resource)  # the sampler: OTEL_TRACES_SAMPLER
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
