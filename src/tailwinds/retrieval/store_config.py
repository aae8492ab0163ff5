"""A document store's configuration, checked when the store is made: how it embeds, how it
splits, where its vectors live."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tailwinds.providers.azure_openai import DEFAULT_API_VERSION
from tailwinds.providers.gemini import DEFAULT_BASE_URL as GEMINI_URL
from tailwinds.providers.local_embeddings import MODEL_NAME

DEFAULT_BASE_URLS = {
    "openAIEmbeddings": "https://api.openai.com/v1",
    "ollamaEmbeddings": "http://127.0.0.1:11434",
    "googleGeminiEmbeddings": GEMINI_URL,
}


class EmbeddingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal[
        "openAIEmbeddings",
        "ollamaEmbeddings",
        "localEmbeddings",
        "azureOpenAIEmbeddings",
        "googleGeminiEmbeddings",
    ]
    model: str = Field(min_length=1)
    # Azure: the resource's endpoint (https://<resource>.openai.azure.com)
    base_url: str | None = Field(None, alias="baseUrl", pattern=r"^https?://")
    credential: str | None = None
    batch_size: int = Field(64, alias="batchSize", ge=1, le=2048)
    # Azure OpenAI only: the deployment and the data-plane API version
    deployment: str | None = Field(None, min_length=1, max_length=256, pattern=r"^[^/?#]+$")
    api_version: str = Field(
        DEFAULT_API_VERSION, alias="apiVersion", pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$"
    )

    @property
    def url(self) -> str:
        return self.base_url or DEFAULT_BASE_URLS.get(self.type, "")

    @model_validator(mode="after")
    def _local_model(self) -> EmbeddingConfig:
        if self.type == "localEmbeddings" and self.model != MODEL_NAME:
            raise ValueError(f"localEmbeddings runs {MODEL_NAME}: set model to it")
        if self.type == "azureOpenAIEmbeddings" and not (self.base_url and self.deployment):
            raise ValueError("azureOpenAIEmbeddings needs baseUrl (the endpoint) and deployment")
        return self


class SplitterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: str = Field("recursive", pattern="^(recursive|markdown)$")
    chunk_size: int = Field(1000, alias="chunkSize", ge=50, le=100_000)
    chunk_overlap: int = Field(200, alias="chunkOverlap", ge=0)


class VectorStoreConfig(BaseModel):
    """Where the vectors are searched: `embedded` (the database plus an in-memory matrix)
    or `chroma` (a Chroma server at `url`, one collection per store)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["embedded", "chroma"] = "embedded"
    url: str | None = Field(None, pattern=r"^https?://")

    @model_validator(mode="after")
    def _needs_url(self) -> VectorStoreConfig:
        if self.type == "chroma" and not self.url:
            raise ValueError("a chroma vector store needs the server's url")
        return self


class StoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    embedding: EmbeddingConfig
    splitter: SplitterConfig = Field(default_factory=lambda: SplitterConfig.model_validate({}))
    vector_store: VectorStoreConfig = Field(
        default_factory=lambda: VectorStoreConfig.model_validate({}), alias="vectorStore"
    )
