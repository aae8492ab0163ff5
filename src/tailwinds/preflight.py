"""The checks `tailwinds start`, `tailwinds worker` and `tailwinds db upgrade` make before
they start: the database answers (and is migrated), Redis answers and is recent enough.
Each failure is a `PreflightFailed` whose message is one line naming the setting, and
never the URL's password."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import parse_qs, urlsplit

from tailwinds.config import Settings

# a start that waits on a Redis that accepts connections and never answers gives up after
# this long (the clients' own bound is sized for blocking reads: 15 s)
REDIS_TIMEOUT_S = 5.0
# the same for the database's first connection (asyncpg's own bound is 60 s); a migration
# after it may take as long as it takes
DATABASE_TIMEOUT_S = 10.0


class PreflightFailed(Exception):
    """A setting that leads nowhere; the message names it."""


def check_database(settings: Settings) -> None:
    """Reach the database and apply the migrations (the server's start migrates again: a
    no-op by then). Raises `PreflightFailed` naming TAILWINDS_DATABASE_URL."""
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import ArgumentError, DBAPIError

    from tailwinds.store.db import Database

    async def migrate() -> None:
        db = Database(settings.database_url)
        try:
            try:
                async with asyncio.timeout(DATABASE_TIMEOUT_S), db.engine.connect():
                    pass
            except TimeoutError:
                raise TimeoutError(f"no answer within {DATABASE_TIMEOUT_S:g} s") from None
            await db.migrate()
        finally:
            await db.close()

    try:
        asyncio.run(migrate())
    except CommandError as exc:  # a revision this version does not know: a newer one's
        raise PreflightFailed(
            "TAILWINDS_DATABASE_URL: expected a database migrated by this version of "
            f"Tailwinds or an older one, got {exc}"
        ) from None
    except (OSError, TimeoutError, DBAPIError, ArgumentError) as exc:
        reason = _scrubbed(str(getattr(exc, "orig", None) or exc), settings.database_url)
        raise PreflightFailed(
            f"TAILWINDS_DATABASE_URL: expected a database that answers, got "
            f"{type(exc).__name__}: {reason}"
        ) from None
    except (ValueError, TypeError, OverflowError) as exc:
        # the URL itself (a port out of range, an option the driver does not take, as
        # libpq's sslmode for asyncpg); its text may hold the password
        raise PreflightFailed(
            "TAILWINDS_DATABASE_URL: expected a URL such as "
            "postgresql://user:password@host:5432/name?ssl=require or "
            "sqlite+aiosqlite:///path, got one that could not be read "
            f"({type(exc).__name__})"
        ) from None


def check_redis(settings: Settings) -> None:
    """Reach Redis (no retries) and check its version (`transport.queue.check_server`).
    Raises `PreflightFailed` naming TAILWINDS_REDIS_URL."""
    from redis.exceptions import RedisError

    from tailwinds.transport.queue import check_server, connect
    from tailwinds.transport.redis_connection import RefusedOption

    async def check() -> None:
        try:
            redis = connect(settings.redis_url, reconnects=0, timeout_s=REDIS_TIMEOUT_S)
        except RefusedOption as exc:
            raise PreflightFailed(f"TAILWINDS_REDIS_URL: {exc}") from None
        except Exception as exc:  # redis-py's parse_url raises more kinds than ValueError
            raise _unreadable(exc) from None
        try:
            await redis.ping()
            try:
                await check_server(redis)
            except ValueError as exc:  # the version; no URL in it
                raise PreflightFailed(str(exc)) from None
        finally:
            await redis.aclose()

    try:
        asyncio.run(check())
    except (OSError, RedisError) as exc:
        reason = _scrubbed(str(exc), settings.redis_url)
        raise PreflightFailed(
            f"TAILWINDS_REDIS_URL: expected a Redis server that answers, got "
            f"{type(exc).__name__}: {reason}"
        ) from None
    except PreflightFailed:
        raise
    except Exception as exc:  # an ssl_* option the connection does not take, or its value
        raise _unreadable(exc) from None


def _scrubbed(reason: str, url: str) -> str:
    """The first line of a driver's error without the URL's password or option values
    (a driver may quote a value it refuses: `ssl_cert_reqs=<the value>`)."""
    reason = reason.split("\n", 1)[0]
    try:
        parts = urlsplit(url)
        hidden = [parts.password or ""]
        hidden += [value for values in parse_qs(parts.query).values() for value in values]
    except ValueError:
        return reason
    for value in sorted(hidden, key=len, reverse=True):
        if len(value) >= 3:
            reason = reason.replace(value, "***")
        elif value:  # short: only where it stands alone, not inside words and numbers
            reason = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", "***", reason)
    return reason


def where(database_url: str) -> str:
    """A database URL as a line may say it: the host, port and database, without the
    user, the password or the options. `?` when it cannot be read."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(database_url)
    except (ArgumentError, ValueError):
        return "?"
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    port = f":{url.port}" if url.port else ""
    return f"{url.host or ''}{port}/{url.database or ''}"


def _unreadable(exc: Exception) -> PreflightFailed:
    # redis-py's text may quote the URL, password included: only its kind is said
    return PreflightFailed(
        "TAILWINDS_REDIS_URL: expected a URL such as redis://[:password@]host:6379/0, "
        f"rediss://… or unix:///path/redis.sock, got one that could not be read "
        f"({type(exc).__name__})"
    )
