"""Ollama's native `/api/embed`: `{model, input: [...]}` in, `{embeddings: [[...]]}` out."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp
import orjson

from tailwinds.errors import ProviderBadResponse
from tailwinds.providers.base import ProviderLimits
from tailwinds.providers.http import Endpoint


class OllamaEmbeddings:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        model: str,
        limits: ProviderLimits,
        batch_size: int = 64,
    ) -> None:
        self.endpoint = Endpoint(
            http,
            base_url.rstrip("/") + "/api/embed",
            {"Content-Type": "application/json"},
            limits,
            urlsplit(base_url).netloc or base_url,
            None,
        )
        self.model = model
        self.batch_size = batch_size

    async def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            resp = await self.endpoint.open(orjson.dumps({"model": self.model, "input": batch}))
            try:
                embeddings = orjson.loads(await resp.read())["embeddings"]
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise ProviderBadResponse(
                    f"{self.endpoint.name} sent an embeddings answer that is not one"
                ) from exc
            finally:
                resp.close()
            if len(embeddings) != len(batch):
                raise ProviderBadResponse(
                    f"{self.endpoint.name} embedded {len(embeddings)} of {len(batch)} texts"
                )
            vectors.extend(embeddings)
        return vectors
