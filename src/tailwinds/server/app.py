"""The FastAPI application: made by `create_app(settings)`, with everything it needs
opened in its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from fastapi import FastAPI
from starlette.types import Scope

import tailwinds.nodes  # noqa: F401  (fills the node registry)
from tailwinds import __version__
from tailwinds.config import Settings
from tailwinds.engine.context import Resources
from tailwinds.engine.runner import FlowRunner
from tailwinds.engine.runs import RunRegistry
from tailwinds.providers.llama_cpp import close_local_models
from tailwinds.server import observability
from tailwinds.server.chatflows import ChatflowService
from tailwinds.server.cors import ChatflowCORS
from tailwinds.server.documents import DocumentService
from tailwinds.server.errors import ERROR_RESPONSES, install_error_handlers
from tailwinds.server.first_start import create_first_chatflow
from tailwinds.server.observability import RequestMetrics
from tailwinds.server.predictions import CHATFLOW_MAX_AGE_S, PredictionService
from tailwinds.server.routes import (
    apikeys,
    chatflows,
    credentials,
    document_stores,
    predictions,
    system,
)
from tailwinds.server.state import AppState
from tailwinds.store.apikeys import ApiKeyRepository
from tailwinds.store.chatflows import ChatflowRepository
from tailwinds.store.credentials import CredentialRepository
from tailwinds.store.db import Database
from tailwinds.store.documents import DocumentRepository
from tailwinds.store.messages import MessageRepository
from tailwinds.store.secrets import SecretBox

logger = logging.getLogger("tailwinds.server")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        await db.migrate()
        # one session for every provider call: pooled, kept-alive connections
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
            trust_env=False,
        )
        box = SecretBox.open(settings.secret_key, settings.home)
        credential_repo = CredentialRepository(db, box)
        document_repo = DocumentRepository(db)
        documents = DocumentService(document_repo, credential_repo)
        resources = Resources(
            settings=settings, http=http, credentials=credential_repo, documents=documents
        )
        documents.resources = resources
        runner = FlowRunner(resources)
        chatflow_repo = ChatflowRepository(db)
        message_repo = MessageRepository(db)
        api_key_repo = ApiKeyRepository(db)
        app.state.tailwinds = AppState(
            settings=settings,
            db=db,
            chatflows=chatflow_repo,
            messages=message_repo,
            api_keys=api_key_repo,
            credentials=credential_repo,
            chatflow_service=ChatflowService(
                chatflow_repo, api_key_repo, credential_repo, document_repo, box
            ),
            documents=documents,
            predictions=PredictionService(
                settings,
                resources,
                chatflow_repo,
                message_repo,
                api_key_repo,
                runner,
                RunRegistry(),
                box,
            ),
        )
        await create_first_chatflow(chatflow_repo, settings)
        _warm_routes(app)
        if not settings.admin_token:
            logger.warning(
                "TAILWINDS_ADMIN_TOKEN is not set: management calls are accepted only from "
                "this machine (loopback addresses)"
            )
        logger.info("Tailwinds %s ready, database %s", __version__, db.url.render_as_string())
        try:
            yield
        finally:
            await runner.drain()
            close_local_models()
            await http.close()
            await db.close()

    app = FastAPI(
        title="Tailwinds",
        version=__version__,
        summary="Run LLM chatflows and stream their answers as server-sent events.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    install_error_handlers(app)
    for module in (
        system,
        observability,
        chatflows,
        apikeys,
        credentials,
        document_stores,
        predictions,
    ):
        app.include_router(module.router)
    app.include_router(document_stores.flowise_router)
    app.add_middleware(
        ChatflowCORS,
        origins_for=_chatflow_origins,
        default=[o.strip() for o in settings.cors_origins.split(",") if o.strip()],
    )
    app.add_middleware(RequestMetrics)
    return app


def _warm_routes(app: FastAPI) -> None:
    """FastAPI builds each included route's handler state on the first request that walks
    past it (~100 ms for all of ours): do it now, not in a user's first prediction."""
    scope = {"type": "http", "method": "GET", "path": "/__warm__", "root_path": "", "headers": []}
    for route in app.router.routes:
        route.matches(scope)


async def _chatflow_origins(scope: Scope, chatflow_id: str) -> list[str] | None:
    state: AppState = scope["app"].state.tailwinds
    chatflow = await state.chatflows.get(chatflow_id, max_age_s=CHATFLOW_MAX_AGE_S)
    return chatflow.allowed_origins if chatflow is not None else None
