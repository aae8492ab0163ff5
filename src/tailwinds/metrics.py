"""Prometheus metrics. Updated once per request or run, never per token."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.process_collector import ProcessCollector

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

HTTP_REQUESTS = Counter(
    "tailwinds_http_requests",
    "HTTP requests by route and status",
    ["route", "status"],
    registry=REGISTRY,
)
ACTIVE_STREAMS = Gauge(
    "tailwinds_active_streams", "Event streams open to clients", registry=REGISTRY
)
WRITE_TIMEOUTS = Counter(
    "tailwinds_write_timeouts",
    "Streams dropped because their client took no write for TAILWINDS_WRITE_TIMEOUT_S",
    registry=REGISTRY,
)
RUNS = Counter("tailwinds_runs", "Finished predictions by status", ["status"], registry=REGISTRY)
TOKENS = Counter("tailwinds_tokens_streamed", "Answer pieces produced", registry=REGISTRY)
TIME_TO_FIRST_TOKEN = Histogram(
    "tailwinds_time_to_first_token_seconds",
    "From the start of a run to its first token",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
RUN_SECONDS = Histogram(
    "tailwinds_run_seconds",
    "Whole runs, start to end",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
RUN_ERRORS = Counter(
    "tailwinds_run_errors",
    "Failed runs by error code (provider_* among them)",
    ["code"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "tailwinds_rate_limited", "Requests refused with 429", ["scope"], registry=REGISTRY
)
CHAT_BUSY = Counter(
    "tailwinds_chat_busy",
    "Predictions refused with 409 chat_busy: their chat was answering another turn",
    registry=REGISTRY,
)
EVENT_SUBSCRIPTIONS = Gauge(
    "tailwinds_event_subscriptions",
    "Queue mode: run streams this API node relays from Redis",
    registry=REGISTRY,
)
ASYNC_TASKS = Gauge(
    "tailwinds_asyncio_tasks",
    "Tasks alive on the event loop (a leak shows here)",
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "tailwinds_queue_depth",
    "Queue mode: predictions waiting or running on workers, all API nodes together",
    registry=REGISTRY,
)
LOCAL_MODEL_PLACES = Gauge(
    "tailwinds_local_model_places",
    "Requests generating with the embedded local model or waiting for it (a place is "
    "given back when its generation has really stopped)",
    registry=REGISTRY,
)
LOCAL_MODEL_TOKENS = Counter(
    "tailwinds_local_model_tokens",
    "Tokens the embedded local model generated (a stopped run stops generating)",
    registry=REGISTRY,
)
OFFLOAD_TASKS = Gauge(
    "tailwinds_offload_tasks",
    "CPU-heavy tasks running or waiting off the event loop, by lane (tailwinds.offload)",
    ["lane"],
    registry=REGISTRY,
)
API_KEY_HASHES = Counter(
    "tailwinds_api_key_hashes",
    "API key checks that ran scrypt (a key seen lately, right or wrong, costs none)",
    registry=REGISTRY,
)
TURNS_NOT_STORED = Counter(
    "tailwinds_turns_not_stored",
    "Turns (a question and its answer) the database refused even alone, after their batch "
    "failed; each was reported to its client as an `error` `storage_failed`",
    registry=REGISTRY,
)
