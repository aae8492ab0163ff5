"""Settings, read once from the environment (TAILWINDS_*) and flags, then passed down.

Nothing else in Tailwinds reads `os.environ`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path = field(default_factory=lambda: Path.home() / ".tailwinds")
    database_url: str = ""  # empty: an SQLite file in `home`
    admin_token: str | None = None
    cors_origins: str = ""  # comma-separated origins allowed for chatflows that list none
    secret_key: str | None = None  # Fernet key for credentials; default: a key file in home
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one JSON object per line
    host: str = "127.0.0.1"
    port: int = 3000
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 50 * 1024 * 1024  # document files, all of one upsert
    keepalive_s: float = 15.0
    default_history_turns: int = 10
    provider_connect_timeout_s: float = 10.0
    provider_first_token_timeout_s: float = 60.0
    provider_idle_timeout_s: float = 60.0
    provider_retries: int = 2
    provider_retry_backoff_s: float = 0.5
    shutdown_grace_s: float = 30.0  # on SIGTERM, how long running streams may go on
    local_model_queue: int = 4  # requests that may wait for a busy local model

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """`TAILWINDS_<FIELD>` for every field; `overrides` (flags) win over the environment."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(f"TAILWINDS_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).resolved()

    def resolved(self) -> Settings:
        home = Path(self.home).expanduser()
        url = self.database_url or f"sqlite+aiosqlite:///{home / 'tailwinds.db'}"
        return replace(self, home=home, database_url=_async_driver(url))


def _parse(name: str, type_name: Any, raw: str) -> Any:
    kind = str(type_name)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"TAILWINDS_{name.upper()}: expected a {kind}, got {raw!r}") from exc
    if kind == "Path":
        return Path(raw)
    return raw


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
