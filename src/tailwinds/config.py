"""Settings, read once from the environment (TAILWINDS_*) and flags, then passed down.

Nothing else in Tailwinds reads `os.environ`.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tailwinds.outbound.addresses import parse_networks
from tailwinds.outbound.proxies import ProxyRules, proxy_rules


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path = field(default_factory=lambda: Path.home() / ".tailwinds")
    database_url: str = ""  # empty: an SQLite file in `home`
    # PostgreSQL connections each process opens at most and keeps open; a statement past
    # them waits for one (30 s): none is opened for a burst and closed after it
    database_pool_size: int = 30
    admin_token: str | None = None
    cors_origins: str = ""  # comma-separated origins allowed for chatflows that list none
    # a Fernet key or a passphrase (>= 16 characters) for credentials; default: a key file
    secret_key: str | None = None
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one JSON object per line
    host: str = "127.0.0.1"
    # proxies whose X-Forwarded-For is believed (comma-separated addresses or networks);
    # empty: the client is whoever opened the connection, whatever headers it sends
    trusted_proxies: str = ""
    port: int = 3000
    max_body_bytes: int = 1024 * 1024
    # host names served besides localhost and IP addresses (comma-separated, `*.example.com`
    # patterns, `*` for any); empty: any once admin_token is set, none without it
    allowed_hosts: str = ""
    max_head_bytes: int = 64 * 1024  # request line and headers
    header_timeout_s: float = 10.0  # to send a whole request head
    # a request body: at most this long without a byte, and past that first allowance at
    # least body_min_rate bytes/s on average (0: no rate), else 408
    body_timeout_s: float = 30.0
    body_min_rate: int = 500
    max_connections: int = 0  # 0: half what the open-files limit leaves
    # per client address; loopback and trusted_proxies have none (they carry many clients)
    max_connections_per_client: int = 256
    # what one client is for that cap: an IPv6 network of this many bits (a /64, what one
    # subscriber gets), an IPv4 one (32: the exact address)
    client_prefix_v6: int = 64
    client_prefix_v4: int = 32
    max_upload_bytes: int = 50 * 1024 * 1024  # the body of an upsert (files or JSON), an import
    # one upsert's documents (JSON items, CSV rows, JSON file items...), checked before
    # splitting, and its chunks, checked after splitting and before any embedding: each
    # costs an embedding call and a database row (README "Document stores")
    max_upsert_documents: int = 10_000
    max_upsert_chunks: int = 50_000
    # document stores whose search index stays in memory, the least recently searched
    # dropped first (rebuilt from the database on its next search)
    index_cache_size: int = 64
    # one page of a `urls` upsert, in bytes (all the pages together stay within
    # max_upload_bytes): a fetched page is held, then parsed, before anything is refused
    max_page_bytes: int = 10 * 1024 * 1024
    # let `urls` upserts reach private addresses (an internal wiki); off: public ones only
    ingest_private_urls: bool = False
    # private networks (CIDR, comma-separated) that caller- or model-steered requests may
    # reach: URL upserts, the HTTP and custom tools, MCP servers over HTTP; empty: public
    # addresses only (SECURITY.md, "Outbound requests")
    outbound_networks: str = ""
    # the HTTP proxy of every outbound request (http://[user:password@]host:port); empty:
    # the environment's HTTP(S)_PROXY / NO_PROXY; `off`: none (tailwinds.outbound.proxies)
    outbound_proxy: str = field(default="", repr=False)
    # the models' HTTP client: `wire` (ours, tailwinds.wire) or `aiohttp` (the escape hatch)
    model_client: str = "wire"
    keepalive_s: float = 15.0
    # a client that takes no write for this long is gone (0: four keep-alive periods)
    write_timeout_s: float = 0.0
    default_history_turns: int = 10
    # concurrentTurns `queue` / `interrupt`: how long a turn waits for the running turn of
    # its chat to end before it is refused with 409 `chat_busy`
    turn_wait_s: float = 30.0
    provider_connect_timeout_s: float = 10.0
    provider_first_token_timeout_s: float = 60.0
    provider_idle_timeout_s: float = 60.0
    provider_retries: int = 2
    provider_retry_backoff_s: float = 0.5
    # the longest answer a run keeps, in characters, whatever a node's maxTokens says (a
    # server that ignores it, or a hostile one): past it the run ends with `answer_too_long`
    max_answer_chars: int = 1_000_000
    shutdown_grace_s: float = 30.0  # on SIGTERM, how long running streams may go on
    local_model_queue: int = 4  # requests that may wait for a busy local model
    # the packaged model a chatLocal node runs when it names none (providers/local_catalog.py)
    local_model: str = "smollm2-135m"
    # reading files and fetched pages (tailwinds.offload): worker processes, tasks that
    # may wait for one, tasks of one client at once, time and memory of one file
    parse_workers: int = 2
    parse_queue: int = 8
    parse_per_client: int = 2
    parse_timeout_s: float = 30.0
    parse_max_memory_mb: int = 1024  # 0: no cap
    # splitting, index builds and the like, on threads beside the event loop
    compute_threads: int = 2
    compute_queue: int = 32
    compute_per_client: int = 4  # tasks of one client address at once (0: no bound)
    # failed API key checks one client address may make in a minute, then 429 (0: no limit)
    max_key_failures_per_minute: int = 10
    # executables an mcpTools node may start as a stdio MCP server (comma-separated)
    mcp_commands: str = ""
    # runs of this process (API node in local mode, worker in queue mode) that may wait at
    # once for a person to approve a tool call; past it a call needing approval is refused
    max_waiting_runs: int = 100
    # resumable streams: how long a finished run's events stay readable (local mode)
    resume_retention_s: float = 60.0
    # how long an AI SDK (`useChat`) answer goes on for a client that left, which may
    # reconnect (`GET /api/v1/ai-sdk/{id}/{chatId}/stream`); 0: leaving stops the run
    ai_sdk_resume_grace_s: float = 30.0
    # scale-out (queue mode): API nodes enqueue, `tailwinds worker` processes run flows
    mode: str = "local"  # or "queue"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "tw"  # every key Tailwinds writes starts with `<prefix>:`
    queue_max: int = 10_000  # jobs waiting or running, all chatflows
    queue_max_per_chatflow: int = 1_000
    worker_concurrency: int = 50
    worker_lease_s: float = 15.0  # a job not heartbeated for this long is another's to claim
    worker_max_rss_mb: int = 0  # 0: no bound; else a worker takes no new job above it
    events_retention_s: float = 300.0  # how long a run's event stream stays after its end
    events_max_len: int = 100_000  # events kept per run stream (XADD MAXLEN)
    # the environment's *_proxy variables (not TAILWINDS_ ones), as from_env found them
    proxy_env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # OpenTelemetry traces (tailwinds.tracing): "on", "off", or "auto": on when the OTEL_*
    # environment names an OTLP endpoint (and OTEL_SDK_DISABLED is not true)
    tracing: str = "auto"
    # prompts, completions, tool arguments and results in spans: they may hold personal data
    trace_content: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """`TAILWINDS_<FIELD>` for every field; `overrides` (flags) win over the environment."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "proxy_env":
                values[f.name] = tuple(
                    (k, v)
                    for k, v in environ.items()
                    if k.lower().endswith("_proxy") or k == "REQUEST_METHOD"
                )
                continue
            raw = environ.get(f"TAILWINDS_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("tracing", "auto") == "auto":
            values["tracing"] = _tracing_from_otel(environ)
        return cls(**values).resolved()

    def resolved(self) -> Settings:
        home = Path(self.home).expanduser()
        url = self.database_url or f"sqlite+aiosqlite:///{home / 'tailwinds.db'}"
        settings = replace(self, home=home, database_url=_async_driver(url))
        problem = settings_problem(settings)
        if problem is not None:
            raise ValueError(problem)
        return settings

    def proxies(self) -> ProxyRules:
        """Which proxy each outbound request goes through (tailwinds.outbound.proxies)."""
        return proxy_rules(self.outbound_proxy, dict(self.proxy_env))

    def client_write_timeout_s(self) -> float:
        """`write_timeout_s`, or its default: four keep-alive periods (60 s), 60 s without
        keep-alives."""
        if self.write_timeout_s > 0:
            return self.write_timeout_s
        return 4 * self.keepalive_s if self.keepalive_s > 0 else 60.0

    def check_queue_mode(self) -> None:
        """Queue mode has several processes writing the database: SQLite cannot be it."""
        if self.database_url.startswith("sqlite"):
            raise ValueError(
                "TAILWINDS_MODE=queue needs PostgreSQL: several API and worker processes "
                "write the database, which SQLite does not take; set "
                "TAILWINDS_DATABASE_URL=postgresql://…"
            )


# numbers that must be above 0; every other number may be 0 (off, or "the default") but
# never negative
_POSITIVE = frozenset(
    {
        "port",
        "database_pool_size",
        "index_cache_size",
        "max_body_bytes",
        "max_head_bytes",
        "header_timeout_s",
        "body_timeout_s",
        "client_prefix_v6",
        "client_prefix_v4",
        "max_upload_bytes",
        "max_upsert_documents",
        "max_upsert_chunks",
        "max_page_bytes",
        "keepalive_s",
        "turn_wait_s",
        "provider_connect_timeout_s",
        "provider_first_token_timeout_s",
        "provider_idle_timeout_s",
        "max_answer_chars",
        "parse_workers",
        "parse_timeout_s",
        "compute_threads",
        "queue_max",
        "queue_max_per_chatflow",
        "worker_concurrency",
        "worker_lease_s",
        "events_retention_s",
        "events_max_len",
    }
)
_CHOICES = {
    "mode": ("local", "queue"),
    "tracing": ("auto", "on", "off"),
    "local_model": ("smollm2-135m", "gemma3-270m"),
    "log_format": ("text", "json"),
    "model_client": ("wire", "aiohttp"),
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
}


def settings_problem(settings: Settings) -> str | None:
    """The first setting out of its range, as one line naming it and what was expected
    (the start-up error), or None."""
    for name, choices in _CHOICES.items():
        value = getattr(settings, name)
        if (value.upper() if name == "log_level" else value) not in choices:
            return f"TAILWINDS_{name.upper()}: expected one of {', '.join(choices)}, got {value!r}"
    for f in fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        label = f"TAILWINDS_{f.name.upper()}"
        if not math.isfinite(value):
            return f"{label}: expected a finite number, got {value!r}"
        if f.name in _POSITIVE and value <= 0:
            return f"{label}: expected a number above 0, got {value!r}"
        if value < 0:
            return f"{label}: expected 0 or more, got {value!r}"
    for name, bits in (("client_prefix_v4", 32), ("client_prefix_v6", 128)):
        if getattr(settings, name) > bits:
            return f"TAILWINDS_{name.upper()}: expected a prefix length up to {bits}"
    if settings.ai_sdk_resume_grace_s > 3600:
        return "TAILWINDS_AI_SDK_RESUME_GRACE_S: expected seconds up to 3600"
    if settings.port > 65535:
        return f"TAILWINDS_PORT: expected a port number up to 65535, got {settings.port}"
    if not settings.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        scheme = settings.database_url.partition(":")[0]
        return (
            "TAILWINDS_DATABASE_URL: expected a postgresql:// or sqlite:// URL, "
            f"got one of scheme {scheme!r}"
        )
    if not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
        return "TAILWINDS_REDIS_URL: expected a redis://, rediss:// or unix:// URL"
    try:
        parse_networks(settings.outbound_networks)
    except ValueError as exc:
        return f"TAILWINDS_OUTBOUND_NETWORKS: {exc}"
    try:
        settings.proxies()
    except ValueError as exc:
        return str(exc)  # names the variable; never echoes a proxy's credentials
    for proxy in (p.strip() for p in settings.trusted_proxies.split(",")):
        if proxy and proxy != "*" and not _is_network(proxy):
            return (
                "TAILWINDS_TRUSTED_PROXIES: expected comma-separated addresses or networks "
                f"(or *), got {proxy[:60]!r}"
            )
    if settings.secret_key:
        from tailwinds.store.secrets import secret_key_problem  # cryptography: only if set

        return secret_key_problem(settings.secret_key)
    return None


def _parse(name: str, type_name: Any, raw: str) -> Any:
    kind = str(type_name)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as exc:
        expected = "an integer" if kind == "int" else "a number"
        raise ValueError(f"TAILWINDS_{name.upper()}: expected {expected}, got {raw!r}") from exc
    if kind == "Path":
        return Path(raw)
    if kind == "bool":
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"TAILWINDS_{name.upper()}: expected true or false, got {raw!r}")
    return raw


def _tracing_from_otel(environ: Mapping[str, str]) -> str:
    """ "on" when the standard OpenTelemetry environment asks for traces: an OTLP endpoint
    set, the SDK not disabled, the traces exporter not "none" (the SDK reads the rest)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "off"
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return "off"
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return "on" if endpoint else "off"


def _async_driver(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://, sqlite://) and pick the
    async driver for them."""
    for prefix, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return driver + url[len(prefix) :]
    return url


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True
