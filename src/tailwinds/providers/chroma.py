"""A collection on a Chroma server, over its REST API (v2) on our shared aiohttp session:
the vector half of a document store that outgrew one process. Cosine space; scores are
similarities (1 - distance), like the embedded index's."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from tailwinds.errors import FlowError
from tailwinds.outbound import Refused
from tailwinds.outbound.client import describe_client_error, read_at_most

TIMEOUT = aiohttp.ClientTimeout(total=30)
# a query answers ids and distances for at most a few hundred chunks: far below this
MAX_ANSWER_BYTES = 16 * 1024 * 1024
MAX_ERROR_BYTES = 300


def chroma_where(metadata_filter: dict[str, Any] | None) -> dict[str, Any] | None:
    """Our `{"key": value | [values]}` filter in Chroma's `where` language."""
    if not metadata_filter:
        return None
    clauses = [
        {key: {"$in": value} if isinstance(value, list) else {"$eq": value}}
        for key, value in metadata_filter.items()
    ]
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def flat_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Chroma keeps scalar metadata only: the rest stays in our database."""
    return {k: v for k, v in metadata.items() if isinstance(v, str | int | float | bool)}


class ChromaCollection:
    def __init__(self, http: aiohttp.ClientSession, url: str, name: str) -> None:
        self.http = http
        self.base = url.rstrip("/") + "/api/v2/tenants/default_tenant/databases/default_database"
        self.name = name
        self._id: str | None = None

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            async with self.http.request(
                method,
                self.base + path,
                data=orjson.dumps(body) if body is not None else None,
                headers={"Content-Type": "application/json"},
                timeout=TIMEOUT,
            ) as resp:
                if resp.status >= 400:
                    raw, _ = await read_at_most(resp, MAX_ERROR_BYTES)
                    message = raw.decode(errors="replace")
                    raise FlowError(f"the Chroma server answered {resp.status}: {message}")
                raw, longer = await read_at_most(resp, MAX_ANSWER_BYTES)
                if longer:
                    raise FlowError(
                        f"the Chroma server's answer is longer than {MAX_ANSWER_BYTES} bytes"
                    )
        except Refused as exc:
            raise FlowError(f"the Chroma server may not be reached: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FlowError(
                f"the Chroma server is not reachable: {describe_client_error(exc)}"
            ) from exc
        try:
            return orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError as exc:
            raise FlowError(f"the Chroma server's answer is not JSON: {exc}") from exc

    async def id(self) -> str:
        if self._id is None:
            made = await self._call(
                "POST",
                "/collections",
                {"name": self.name, "get_or_create": True, "metadata": {"hnsw:space": "cosine"}},
            )
            self._id = str(made["id"])
        return self._id

    async def upsert(
        self,
        ids: list[str],
        embeddings: list[list[float]],
        documents: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        if not ids:
            return
        body = {
            "ids": ids,
            "embeddings": embeddings,
            "documents": documents,
            "metadatas": [flat_metadata(m) for m in metadatas],
        }
        await self._call("POST", f"/collections/{await self.id()}/upsert", body)

    async def delete(self, ids: list[str]) -> None:
        if ids:
            await self._call("POST", f"/collections/{await self.id()}/delete", {"ids": ids})

    async def query(
        self, vector: list[float], n: int, metadata_filter: dict[str, Any] | None
    ) -> list[tuple[str, float]]:
        body: dict[str, Any] = {
            "query_embeddings": [vector],
            "n_results": n,
            "include": ["distances"],
        }
        where = chroma_where(metadata_filter)
        if where is not None:
            body["where"] = where
        found = await self._call("POST", f"/collections/{await self.id()}/query", body)
        return [
            (chunk_id, 1.0 - float(distance))
            for chunk_id, distance in zip(found["ids"][0], found["distances"][0], strict=True)
        ]

    async def drop(self) -> None:
        await self._call("DELETE", f"/collections/{self.name}")
