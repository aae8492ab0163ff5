"""The OpenAI-compatible `/v1/embeddings` wire format, in batches, with the same retries
and error mapping as chat."""

from __future__ import annotations

from tailwinds.providers.base import ProviderLimits
from tailwinds.providers.embeddings import embed_in_batches
from tailwinds.providers.http import Endpoint
from tailwinds.wire import WireClient


class OpenAIEmbeddings:
    def __init__(
        self,
        wire: WireClient,
        base_url: str,
        api_key: str | None,
        model: str,
        limits: ProviderLimits,
        batch_size: int = 64,
        path: str = "/embeddings",
        key_header: str | None = None,
    ) -> None:
        """`key_header`: as `OpenAIChatProvider`'s (Azure's `api-key`)."""
        headers = {"Content-Type": "application/json"}
        if api_key:
            if key_header:
                headers[key_header] = api_key
            else:
                headers["Authorization"] = f"Bearer {api_key}"
        self.endpoint = Endpoint(wire, base_url, path, headers, limits, api_key)
        self.model = model
        self.batch_size = batch_size

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await embed_in_batches(
            self.endpoint,
            texts,
            self.batch_size,
            lambda batch: {"model": self.model, "input": batch},
            lambda answer: [
                item["embedding"] for item in sorted(answer["data"], key=lambda d: d["index"])
            ],
        )
