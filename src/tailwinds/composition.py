"""Everything made once at start, by the app or by a worker, reachable from a request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import tailwinds.nodes  # noqa: F401  (fills the node registry)
from tailwinds import offload
from tailwinds.config import Settings
from tailwinds.engine.context import Resources
from tailwinds.engine.runner import FlowRunner
from tailwinds.engine.runs import RunRegistry
from tailwinds.outbound.client import guarded_session
from tailwinds.outbound.policies import service_policy
from tailwinds.providers.llama_cpp import close_local_models
from tailwinds.providers.mcp_sessions import SESSIONS as MCP_SESSIONS
from tailwinds.server.chatflows import ChatflowService
from tailwinds.retrieval.documents import DocumentService
from tailwinds.runs.service import PredictionService
from tailwinds.server.transfer import TransferService
from tailwinds.store.apikeys import ApiKeyRepository
from tailwinds.store.chatflows import ChatflowRepository
from tailwinds.store.credentials import CredentialRepository
from tailwinds.store.db import Database
from tailwinds.store.documents import DocumentRepository
from tailwinds.store.messages import MessageRepository
from tailwinds.store.secrets import SecretBox
from tailwinds.wire import WireClient


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
    transfer: TransferService


@asynccontextmanager
async def open_state(settings: Settings) -> AsyncIterator[AppState]:
    """The database (migrated), the shared HTTP session, the repositories and services;
    closed in order on the way out, after the runs still being stored."""
    if settings.mode == "queue":
        settings.check_queue_mode()
    db = Database(settings.database_url)
    await db.migrate()
    offload.configure(settings)
    # pooled, kept-alive connections: the models' own client, and one session for the rest
    # (Chroma); both reach the servers the operator configured, each new connection
    # checked on the addresses it uses: never a cloud metadata address (tailwinds.outbound)
    services = service_policy(settings)
    wire = WireClient(policy=services)
    http = guarded_session(services, pooled=True)
    box = SecretBox.open(settings.secret_key, settings.home)
    credential_repo = CredentialRepository(db, box)
    document_repo = DocumentRepository(db)
    documents = DocumentService(document_repo, credential_repo)
    resources = Resources(
        settings=settings,
        http=http,
        wire=wire,
        credentials=credential_repo,
        documents=documents,
    )
    documents.resources = resources
    runner = FlowRunner(resources)
    chatflow_repo = ChatflowRepository(db)
    message_repo = MessageRepository(db)
    api_key_repo = ApiKeyRepository(db)
    predictions = PredictionService(
        settings,
        resources,
        chatflow_repo,
        message_repo,
        api_key_repo,
        runner,
        RunRegistry(),
        box,
    )
    resources.chatflows = predictions
    chatflow_service = ChatflowService(
        chatflow_repo, api_key_repo, credential_repo, document_repo, box, settings
    )
    try:
        yield AppState(
            settings=settings,
            db=db,
            chatflows=chatflow_repo,
            messages=message_repo,
            api_keys=api_key_repo,
            credentials=credential_repo,
            chatflow_service=chatflow_service,
            documents=documents,
            predictions=predictions,
            transfer=TransferService(
                chatflow_service, chatflow_repo, credential_repo, api_key_repo, box
            ),
        )
    finally:
        await predictions.relays.drain()
        await documents.jobs.drain()
        await runner.drain()
        close_local_models()
        await MCP_SESSIONS.close()
        wire.close()
        offload.close()
        await http.close()
        await db.close()

