"""The composition root: everything a process makes once at start (the app's API node and
a queue worker alike), built in dependency order by constructor injection, and closed in
the reverse order. Only the transport differs between them (a `TransportMaker`); nothing
here imports FastAPI or Starlette."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import tailwinds.nodes  # noqa: F401  (fills the node registry)
from tailwinds import offload, tracing
from tailwinds.config import Settings
from tailwinds.engine.context import Resources
from tailwinds.engine.runner import FlowRunner
from tailwinds.engine.runs import RunRegistry
from tailwinds.manage.chatflows import ChatflowService
from tailwinds.manage.transfer import TransferService
from tailwinds.outbound.client import guarded_session
from tailwinds.outbound.policies import service_policy
from tailwinds.providers.llama_cpp import LocalModels
from tailwinds.providers.local_embeddings import LocalEmbeddingModel
from tailwinds.providers.mcp_sessions import McpSessions
from tailwinds.retrieval.connections import Connections
from tailwinds.retrieval.documents import DocumentService
from tailwinds.runs.local_transport import LocalTransport
from tailwinds.runs.queue_transport import QueueTransport
from tailwinds.runs.service import PredictionService
from tailwinds.runs.transport import Transport
from tailwinds.store.apikeys import ApiKeyRepository
from tailwinds.store.chatflows import ChatflowRepository
from tailwinds.store.credentials import CredentialRepository
from tailwinds.store.db import Database
from tailwinds.store.documents import DocumentRepository
from tailwinds.store.messages import MessageRepository
from tailwinds.store.secrets import SecretBox
from tailwinds.transport.redis_approvals import RedisApprovals
from tailwinds.transport.redis_turns import RedisTurns
from tailwinds.wire import model_client

# makes the transport once the run registry exists (a local one aborts its runs), with the
# turns' store (queue mode stores the turn of a job withdrawn while it waited)
TransportMaker = Callable[[RunRegistry, MessageRepository], Awaitable[Transport]]


@dataclass(slots=True)
class Core:
    settings: Settings
    db: Database
    box: SecretBox
    chatflows: ChatflowRepository
    messages: MessageRepository
    api_keys: ApiKeyRepository
    credentials: CredentialRepository
    document_repo: DocumentRepository
    documents: DocumentService
    runs: RunRegistry
    transport: Transport
    predictions: PredictionService
    chatflow_service: ChatflowService
    transfer: TransferService


def api_transport(settings: Settings) -> TransportMaker:
    """An API node's transport, as TAILWINDS_MODE says: runs here (local), or queued for
    the workers through Redis (queue; Redis must answer at start)."""

    async def make(runs: RunRegistry, messages: MessageRepository) -> Transport:
        if settings.mode == "queue":
            return await QueueTransport.open(settings, messages.add_turn)
        return LocalTransport(settings, runs)

    return make


def worker_transport(
    settings: Settings, turns: RedisTurns, approvals: RedisApprovals
) -> TransportMaker:
    """A worker's transport: its runs are its own (local), their chats' leases in Redis
    (adopted from the API node for each job, and a chatflowTool's own), and so are the
    decisions on its tool calls (posted to any API node)."""

    async def make(runs: RunRegistry, messages: MessageRepository) -> Transport:
        return LocalTransport(settings, runs, turns, approvals)

    return make


@asynccontextmanager
async def open_core(settings: Settings, make_transport: TransportMaker) -> AsyncIterator[Core]:
    """The database (migrated), the shared HTTP session, the repositories, the transport
    and the services; closed in order on the way out, after the runs still being stored."""
    if settings.mode == "queue":
        settings.check_queue_mode()
    db = Database(settings.database_url, settings.database_pool_size)
    await db.migrate()
    tracing.configure(settings)  # API node and worker alike
    offload.configure(settings)
    # pooled, kept-alive connections: the models' own client, and one session for the rest
    # (Chroma); both reach the servers the operator configured, each new connection
    # checked on the addresses it uses: never a cloud metadata address (tailwinds.outbound)
    services = service_policy(settings)
    proxies = settings.proxies()  # HTTP(S)_PROXY / TAILWINDS_OUTBOUND_PROXY, both clients
    wire = model_client(settings.model_client, services, proxies)
    http = guarded_session(services, pooled=True, proxies=proxies)
    box = SecretBox.open(settings.secret_key, settings.home)
    credential_repo = CredentialRepository(db, box)
    document_repo = DocumentRepository(db)
    documents = DocumentService(
        document_repo,
        credential_repo,
        Connections(
            settings=settings, http=http, wire=wire, local_embeddings=LocalEmbeddingModel()
        ),
    )
    runs = RunRegistry()
    transport: Transport | None = None
    resources: Resources | None = None
    runner: FlowRunner | None = None
    try:
        message_repo = MessageRepository(db)
        transport = await make_transport(runs, message_repo)
        resources = Resources(
            settings=settings,
            http=http,
            wire=wire,
            credentials=credential_repo,
            documents=documents,
            mcp_sessions=McpSessions(),
            local_models=LocalModels(),
            approvals=transport.approvals,
        )
        runner = FlowRunner(resources)
        chatflow_repo = ChatflowRepository(db)
        api_key_repo = ApiKeyRepository(db)
        predictions = PredictionService(
            settings,
            resources,
            chatflow_repo,
            message_repo,
            api_key_repo,
            runner,
            runs,
            box,
            transport,
        )
        chatflow_service = ChatflowService(
            chatflow_repo, api_key_repo, credential_repo, document_repo, box, settings
        )
        yield Core(
            settings=settings,
            db=db,
            box=box,
            chatflows=chatflow_repo,
            messages=message_repo,
            api_keys=api_key_repo,
            credentials=credential_repo,
            document_repo=document_repo,
            documents=documents,
            runs=runs,
            transport=transport,
            predictions=predictions,
            chatflow_service=chatflow_service,
            transfer=TransferService(
                chatflow_service, chatflow_repo, credential_repo, api_key_repo, box
            ),
        )
    finally:
        if transport is not None:
            await transport.close()
        await documents.jobs.drain()
        if runner is not None:
            await runner.drain()
        if resources is not None:
            resources.local_models.close()
            await resources.mcp_sessions.close()
        await wire.aclose()
        offload.close()
        await http.close()
        await db.close()
        await tracing.shutdown()
