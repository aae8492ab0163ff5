"""The app's services, as a FastAPI dependency of the routes: made once at start by
`tailwinds.composition.open_state`, reachable from every request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tailwinds.composition import AppState

__all__ = ["AppState", "State", "app_state"]


async def app_state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency on a worker thread, per request
    return request.app.state.tailwinds  # type: ignore[no-any-return]


State = Annotated[AppState, Depends(app_state)]
