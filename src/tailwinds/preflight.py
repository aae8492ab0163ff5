"""The checks `tailwinds start`, `tailwinds worker` and `tailwinds db upgrade` make before
they start: the database answers (and is migrated), Redis answers and is recent enough.
Each failure is a `ValueError` whose message is one line naming the setting."""

from __future__ import annotations

import asyncio

from tailwinds.config import Settings


def check_database(settings: Settings) -> None:
    """Reach the database and apply the migrations (the server's start migrates again: a
    no-op by then). Raises `ValueError` naming TAILWINDS_DATABASE_URL."""
    from sqlalchemy.exc import ArgumentError, DBAPIError

    from tailwinds.store.db import Database

    async def migrate() -> None:
        db = Database(settings.database_url)
        try:
            await db.migrate()
        finally:
            await db.close()

    try:
        asyncio.run(migrate())
    except (OSError, TimeoutError, DBAPIError, ArgumentError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).split("\n", 1)[0]
        raise ValueError(
            f"TAILWINDS_DATABASE_URL: expected a database that answers, got "
            f"{type(exc).__name__}: {reason}"
        ) from None


def check_redis(settings: Settings) -> None:
    """Reach Redis (no retries) and check its version (`transport.queue.check_server`).
    Raises `ValueError` naming TAILWINDS_REDIS_URL."""
    from redis.exceptions import RedisError

    from tailwinds.transport.queue import check_server, connect

    async def check() -> None:
        redis = connect(settings.redis_url, reconnects=0)
        try:
            await redis.ping()
            await check_server(redis)
        finally:
            await redis.aclose()

    try:
        asyncio.run(check())
    except (OSError, RedisError) as exc:
        reason = str(exc).split("\n", 1)[0]
        raise ValueError(
            f"TAILWINDS_REDIS_URL: expected a Redis server that answers, got "
            f"{type(exc).__name__}: {reason}"
        ) from None
