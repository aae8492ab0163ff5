"""The local model's failures end its stream as errors of the right class, after the text
it made, with a stand-in for llama-cpp-python's `Llama` (no model file needed)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tailwinds.errors import ProviderRejected, ProviderUnavailable, TailwindsError
from tailwinds.messages import Usage
from tailwinds.providers import llama_cpp as llama_cpp_provider
from tailwinds.providers.llama_cpp import LocalModel, ModelKey
from tests.requirements import require_module


class FakeLlama:
    def __init__(self, pieces: list[str], error: BaseException | None) -> None:
        self.pieces = pieces
        self.error = error

    def create_completion(self, prompt: str, **options: Any) -> Iterator[dict[str, Any]]:
        for piece in self.pieces:
            yield {"choices": [{"text": piece}]}
        if self.error is not None:
            raise self.error

    def tokenize(self, data: bytes, add_bos: bool = True) -> list[int]:
        return list(range(3))


def generate(pieces: list[str], error: BaseException | None) -> tuple[list[Any], Any]:
    model = LocalModel(ModelKey("", 512, 1), Path("."), queue_size=0)
    model._llama = FakeLlama(pieces, error)

    async def main() -> tuple[list[Any], Any]:
        out: list[Any] = []
        try:
            async for item in model.generate(
                "hi", max_tokens=8, temperature=0, stop=[], reservation=model.reserve()
            ):
                out.append(item)
        except TailwindsError as exc:
            return out, exc
        return out, None

    try:
        return asyncio.run(main())
    finally:
        model.close()


def test_a_whole_generation_ends_with_usage() -> None:
    out, error = generate(["Hé", "llo 😀"], None)
    assert error is None
    assert out == ["Hé", "llo 😀", Usage(3, 2, 5)]


@pytest.mark.parametrize(
    ("error", "expected", "words"),
    [
        (
            ValueError("Requested tokens (900) exceed context window of 512"),
            ProviderRejected,
            "900",
        ),
        (RuntimeError("llama_decode returned -3"), ProviderUnavailable, "llama_decode"),
        (MemoryError(), ProviderUnavailable, "memory"),
    ],
)
def test_generation_errors_are_provider_errors(
    error: BaseException, expected: type[TailwindsError], words: str
) -> None:
    out, raised = generate(["Hello"], error)
    assert out == ["Hello"]
    assert type(raised) is expected
    assert words in raised.message


def test_amx_is_read_from_the_cpus_flags(tmp_path: Path) -> None:
    flags = "flags\t\t: fpu vme avx2 avx512f {}\nbugs\t\t: spectre_v1\n"
    with_amx, without = tmp_path / "with", tmp_path / "without"
    with_amx.write_text(flags.format("amx_bf16 amx_tile amx_int8"))
    without.write_text(flags.format("avx512_vnni") + "model name\t: amx_tile in a name\n")
    assert llama_cpp_provider._advertises_amx(str(with_amx))
    assert not llama_cpp_provider._advertises_amx(str(without))
    assert not llama_cpp_provider._advertises_amx(str(tmp_path / "none"))


def test_plain_cpu_buffers_turn_off_llamas_extra_buffer_types(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_module("llama_cpp", "pip install -e '.[local]'")
    import llama_cpp.llama_cpp as low

    monkeypatch.setattr(low, "llama_model_default_params", low.llama_model_default_params)
    llama_cpp_provider._plain_cpu_buffers()
    llama_cpp_provider._plain_cpu_buffers()  # once for the process
    assert not low.llama_model_default_params().use_extra_bufts
