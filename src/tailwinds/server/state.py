"""The app's services: the core (tailwinds.composition) and the HTTP layer's own management
services on top, made once at start and reachable from every request as a FastAPI
dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tailwinds.composition import Core, api_transport, open_core
from tailwinds.config import Settings
from tailwinds.retrieval.documents import DocumentService
from tailwinds.runs.service import PredictionService
from tailwinds.server.chatflows import ChatflowService
from tailwinds.server.transfer import TransferService
from tailwinds.store.apikeys import ApiKeyRepository
from tailwinds.store.chatflows import ChatflowRepository
from tailwinds.store.credentials import CredentialRepository
from tailwinds.store.db import Database
from tailwinds.store.messages import MessageRepository


@dataclass(slots=True)
class AppState:
    core: Core
    settings: Settings
    db: Database
    chatflows: ChatflowRepository
    messages: MessageRepository
    api_keys: ApiKeyRepository
    credentials: CredentialRepository
    chatflow_service: ChatflowService
    documents: DocumentService
    predictions: PredictionService
    transfer: TransferService


@asynccontextmanager
async def open_state(settings: Settings) -> AsyncIterator[AppState]:
    """An API node's core (its transport as TAILWINDS_MODE says) and the management
    services, which the core does not need."""
    async with open_core(settings, api_transport(settings)) as core:
        chatflow_service = ChatflowService(
            core.chatflows, core.api_keys, core.credentials, core.document_repo, core.box, settings
        )
        yield AppState(
            core=core,
            settings=settings,
            db=core.db,
            chatflows=core.chatflows,
            messages=core.messages,
            api_keys=core.api_keys,
            credentials=core.credentials,
            chatflow_service=chatflow_service,
            documents=core.documents,
            predictions=core.predictions,
            transfer=TransferService(
                chatflow_service, core.chatflows, core.credentials, core.api_keys, core.box
            ),
        )


async def app_state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency on a worker thread, per request
    return request.app.state.tailwinds  # type: ignore[no-any-return]


State = Annotated[AppState, Depends(app_state)]
