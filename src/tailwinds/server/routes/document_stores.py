"""Document stores: create, upsert documents, list and delete chunks, query."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from tailwinds.errors import InvalidRequest
from tailwinds.retrieval.ingest_jobs import Progress
from tailwinds.server.auth import require_admin
from tailwinds.server.errors import json_response
from tailwinds.server.state import State
from tailwinds.server.uploads import fetch_pages, read_documents, read_upsert

router = APIRouter(
    prefix="/api/v1/document-stores",
    tags=["document stores"],
    dependencies=[Depends(require_admin)],
)


BINARY = {"type": "string", "format": "binary"}


class StoreBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=200)
    embedding: dict[str, Any] = Field(
        examples=[{"type": "openAIEmbeddings", "model": "text-embedding-3-small"}]
    )
    splitter: dict[str, Any] = Field(default_factory=dict, examples=[{"chunkSize": 1000}])
    vector_store: dict[str, Any] = Field(
        default_factory=dict,
        alias="vectorStore",
        examples=[{"type": "chroma", "url": "http://chroma:8000"}],
    )


class UpsertBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[Any] = Field(examples=[[{"pageContent": "…", "metadata": {"source": "a"}}]])


class QueryBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    query: str = Field(min_length=1)
    top_k: int = Field(4, alias="topK", ge=1, le=100)
    mode: Literal["vector", "keyword", "hybrid"] = "hybrid"
    metadata_filter: dict[str, Any] | None = Field(None, alias="filter")


@router.post("", status_code=201)
async def create_store(body: StoreBody, state: State) -> dict[str, Any]:
    config = {
        "embedding": body.embedding,
        "splitter": body.splitter,
        "vectorStore": body.vector_store,
    }
    return await state.documents.create(body.name, config)


@router.get("")
async def list_stores(state: State) -> list[dict[str, Any]]:
    return await state.documents.list()


@router.get("/{store_id}")
async def get_store(store_id: str, state: State) -> dict[str, Any]:
    """The store, with its sources and how many chunks each holds."""
    return await state.documents.get(store_id)


@router.delete("/{store_id}", status_code=204)
async def delete_store(store_id: str, state: State) -> Response:
    await state.documents.delete(store_id)
    return Response(status_code=204)


@router.post(
    "/{store_id}/upsert",
    responses={
        200: {"description": "The upsert is done: sources, chunks, embedded, replaced"},
        202: {"description": "`?background=true`: the job, to follow at …/jobs/{jobId}"},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": UpsertBody.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            }
                        },
                    }
                },
            }
        }
    },
)
async def upsert(
    store_id: str, request: Request, state: State, background: bool = False
) -> Response:
    """Add documents, as JSON `{documents: [{pageContent, metadata}]}`, `{urls: [...]}` or
    as files (multipart, field `files`: txt, md, csv, json, pdf, html). A source sent again
    (a file name, a URL, or `metadata.source`) replaces its chunks. All or nothing. With
    `?background=true`: `202` and a job id at once, the work off the request path."""
    documents, urls = await read_upsert(request, state.settings)
    if not background:
        documents += await fetch_pages(urls, state.settings)
        return json_response(await state.documents.upsert(store_id, documents))
    await state.documents.get(store_id)  # an unknown store is a 404 now, not a failed job
    settings = state.settings

    async def work(progress: Progress) -> dict[str, Any]:
        pages = await fetch_pages(urls, settings)
        return await state.documents.upsert(store_id, documents + pages, progress)

    job = state.documents.jobs.start(store_id, work)
    return json_response(job.as_json(), status_code=202)


@router.get("/{store_id}/jobs/{job_id}")
async def ingest_job(store_id: str, job_id: str, state: State) -> dict[str, Any]:
    """A background upsert: `running` with `done` of `total` chunks embedded, then `done`
    with its result or `failed` with its error."""
    return state.documents.jobs.get(store_id, job_id).as_json()


@router.get("/{store_id}/chunks")
async def list_chunks(
    store_id: str, state: State, source: str | None = None
) -> list[dict[str, Any]]:
    return await state.documents.list_chunks(store_id, source)


@router.get("/{store_id}/chunks/{chunk_id}")
async def get_chunk(store_id: str, chunk_id: str, state: State) -> dict[str, Any]:
    return await state.documents.get_chunk(store_id, chunk_id)


@router.delete("/{store_id}/chunks/{chunk_id}", status_code=204)
async def delete_chunk(store_id: str, chunk_id: str, state: State) -> Response:
    """Drop one chunk (a source sent again comes back whole)."""
    await state.documents.delete_chunk(store_id, chunk_id)
    return Response(status_code=204)


@router.delete("/{store_id}/sources")
async def delete_source(store_id: str, source: str, state: State) -> dict[str, Any]:
    return {"source": source, "deleted": await state.documents.delete_source(store_id, source)}


@router.post("/{store_id}/query")
async def query(store_id: str, body: QueryBody, state: State) -> list[dict[str, Any]]:
    """What a retriever on this store would find."""
    await state.documents.get(store_id)
    return await state.documents.search(
        store_id, body.query, body.top_k, body.mode, None, body.metadata_filter
    )


flowise_router = APIRouter(prefix="/api/v1", tags=["document stores"])


@flowise_router.post("/vector/upsert/{chatflow_id}")
async def upsert_for_chatflow(chatflow_id: str, request: Request, state: State) -> dict[str, Any]:
    """Flowise's spelling: upsert into the document store the chatflow retrieves from.
    Needs the chatflow's API key when it has one, like its predictions."""
    chatflow = await state.predictions.authorized_chatflow(
        chatflow_id, request.headers.get("authorization")
    )
    store_ids = [
        node.get("inputs", {}).get("documentStoreId")
        for node in chatflow.flow_data.get("nodes", [])
        if isinstance(node, dict) and node.get("inputs", {}).get("documentStoreId")
    ]
    if not store_ids:
        raise InvalidRequest(
            "this chatflow has no retriever with a documentStoreId", field="chatflow"
        )
    documents = await read_documents(request, state.settings)
    return await state.documents.upsert(store_ids[0], documents)
