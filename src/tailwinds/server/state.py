"""Everything the app makes once at start, reachable from a request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tailwinds.config import Settings
from tailwinds.server.chatflows import ChatflowService
from tailwinds.server.documents import DocumentService
from tailwinds.server.predictions import PredictionService
from tailwinds.store.apikeys import ApiKeyRepository
from tailwinds.store.chatflows import ChatflowRepository
from tailwinds.store.credentials import CredentialRepository
from tailwinds.store.db import Database
from tailwinds.store.messages import MessageRepository


@dataclass(slots=True)
class AppState:
    settings: Settings
    db: Database
    chatflows: ChatflowRepository
    messages: MessageRepository
    api_keys: ApiKeyRepository
    credentials: CredentialRepository
    chatflow_service: ChatflowService
    documents: DocumentService
    predictions: PredictionService


async def app_state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency on a worker thread, per request
    return request.app.state.tailwinds  # type: ignore[no-any-return]


State = Annotated[AppState, Depends(app_state)]
