"""The OpenAI-compatible `/v1/embeddings` wire format, in batches, with the same retries
and error mapping as chat."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp
import orjson

from tailwinds.errors import ProviderBadResponse
from tailwinds.providers.base import ProviderLimits
from tailwinds.providers.http import Endpoint


class OpenAIEmbeddings:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        api_key: str | None,
        model: str,
        limits: ProviderLimits,
        batch_size: int = 64,
    ) -> None:
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.endpoint = Endpoint(
            http,
            base_url.rstrip("/") + "/embeddings",
            headers,
            limits,
            urlsplit(base_url).netloc or base_url,
            api_key,
        )
        self.model = model
        self.batch_size = batch_size

    async def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            resp = await self.endpoint.open(orjson.dumps({"model": self.model, "input": batch}))
            try:
                body = orjson.loads(await resp.read())
                data = sorted(body["data"], key=lambda item: item["index"])
                vectors.extend(item["embedding"] for item in data)
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise ProviderBadResponse(
                    f"{self.endpoint.name} sent an embeddings answer that is not one"
                ) from exc
            finally:
                resp.close()
            if len(data) != len(batch):
                raise ProviderBadResponse(
                    f"{self.endpoint.name} embedded {len(data)} of {len(batch)} texts"
                )
        dimensions = {len(v) for v in vectors}
        if len(dimensions) > 1:
            raise ProviderBadResponse(f"{self.endpoint.name} mixed dimensions {sorted(dimensions)}")
        return vectors
