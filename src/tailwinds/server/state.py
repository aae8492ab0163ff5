"""The app's services (tailwinds.composition's `Core`, the API node's transport as
TAILWINDS_MODE says), made once at start and reachable from every request as a FastAPI
dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request

from tailwinds.composition import Core, api_transport, open_core
from tailwinds.config import Settings

AppState = Core


@asynccontextmanager
async def open_state(settings: Settings) -> AsyncIterator[AppState]:
    """An API node's services, closed in order on the way out."""
    async with open_core(settings, api_transport(settings)) as core:
        yield core


async def app_state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency on a worker thread, per request
    return request.app.state.tailwinds


State = Annotated[AppState, Depends(app_state)]
