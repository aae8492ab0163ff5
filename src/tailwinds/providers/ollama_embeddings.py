"""Ollama's native `/api/embed`: `{model, input: [...]}` in, `{embeddings: [[...]]}` out."""

from __future__ import annotations

from tailwinds.providers.base import ProviderLimits
from tailwinds.providers.embeddings import embed_in_batches
from tailwinds.providers.http import Endpoint
from tailwinds.wire import WireClient


class OllamaEmbeddings:
    def __init__(
        self,
        wire: WireClient,
        base_url: str,
        model: str,
        limits: ProviderLimits,
        batch_size: int = 64,
    ) -> None:
        self.endpoint = Endpoint(
            wire,
            base_url,
            "/api/embed",
            {"Content-Type": "application/json"},
            limits,
            None,
        )
        self.model = model
        self.batch_size = batch_size

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await embed_in_batches(
            self.endpoint,
            texts,
            self.batch_size,
            lambda batch: {"model": self.model, "input": batch},
            lambda answer: list(answer["embeddings"]),
        )
