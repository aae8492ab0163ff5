"""What the document service uses of the process's shared clients: the settings, the
general HTTP session (Chroma), the model providers' client and the local model
(embeddings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tailwinds.config import Settings

if TYPE_CHECKING:
    import aiohttp

    from tailwinds.providers.local_embeddings import LocalEmbeddingModel
    from tailwinds.wire import WireClient


@dataclass(frozen=True, slots=True)
class Connections:
    settings: Settings
    http: aiohttp.ClientSession
    wire: WireClient
    # the offline embedding model, loaded on first use
    local_embeddings: LocalEmbeddingModel
