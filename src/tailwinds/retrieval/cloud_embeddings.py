"""The embedding clients of the cloud providers with their own addressing (Azure OpenAI's
deployments, Gemini's models), from a store's embedding configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from tailwinds.providers.azure_openai import azure_embeddings
from tailwinds.providers.base import ProviderLimits
from tailwinds.providers.gemini import GeminiEmbeddings

if TYPE_CHECKING:
    from tailwinds.retrieval.store_config import EmbeddingConfig
    from tailwinds.wire import WireClient

CLOUD_EMBEDDINGS = frozenset({"azureOpenAIEmbeddings", "googleGeminiEmbeddings"})


class Embedder(Protocol):
    async def embed(self, texts: list[str]) -> list[list[float]]: ...


def cloud_embeddings(
    config: EmbeddingConfig, wire: WireClient, api_key: str | None, limits: ProviderLimits
) -> Embedder:
    """The client for a `CLOUD_EMBEDDINGS` type (the config is checked: Azure has its
    endpoint and deployment)."""
    if config.type == "azureOpenAIEmbeddings":
        return azure_embeddings(
            wire,
            config.url,
            config.deployment or "",
            config.api_version,
            api_key,
            limits,
            config.batch_size,
        )
    return GeminiEmbeddings(wire, config.url, api_key, config.model, limits, config.batch_size)
