"""What the document service uses of the process's shared clients: the settings, the
general HTTP session (Chroma) and the model providers' client (embeddings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tailwinds.config import Settings

if TYPE_CHECKING:
    import aiohttp

    from tailwinds.wire import WireClient


@dataclass(frozen=True, slots=True)
class Connections:
    settings: Settings
    http: aiohttp.ClientSession
    wire: WireClient
