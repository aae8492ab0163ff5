"""The embeddings wire formats (OpenAI-compatible `/v1/embeddings`, Ollama's `/api/embed`)
against recorded-shape HTTP answers (tests/fixtures/transcripts/embeddings/<kind>/*.http),
each read by the real HTTP client's parser whole, byte by byte and cut in two reads at
every position: the vectors or the error never depend on where the network cut the
answer, its head, its chunked framing or its body.

Sources of the shapes: OpenAI's API reference (Embeddings; Error codes), llama.cpp server's
`/v1/embeddings` and `format_error_response`, Ollama's docs/api.md (Generate Embeddings)
and its `{"error": "..."}` answers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
import pytest

from tailwinds.errors import ProviderError
from tailwinds.providers import embeddings
from tailwinds.providers.base import ProviderLimits
from tailwinds.providers.ollama_embeddings import OllamaEmbeddings
from tailwinds.providers.openai_embeddings import OpenAIEmbeddings
from tests.unit.providers.http_replay import TRANSCRIPTS, ReplayWire, http_answer, http_transcript
from tests.unit.providers.transcript_replay import API_KEY, cuts

OPENAI_VECTORS = [[0.0023064255, -0.009327292, 0.015797347], [-0.0069352793, 0.0121, 1e-05]]
OLLAMA_VECTORS = [
    [0.010071029, -0.0017594862, 0.05007221],
    [-0.009802706, 0.060424414, 0.025257083],
]
TEXTS = ["a", "b"]


@dataclass(frozen=True)
class Expect:
    vectors: list[list[float]] | None = None
    code: str | None = None  # the error's code; None: the vectors came
    message: str = ""  # a part of the error's message


BAD = "provider_bad_response"
NOT_ONE = "an embeddings answer that is not one"
EXPECTED: dict[str, Expect] = {
    "openai/normal.http": Expect(OPENAI_VECTORS),
    "openai/normal_chunked.http": Expect(OPENAI_VECTORS),
    "openai/out_of_order.http": Expect(OPENAI_VECTORS),
    "openai/llama_cpp.http": Expect(OPENAI_VECTORS),
    "openai/error_context_length.http": Expect(
        code="provider_rejected", message="maximum context length is 8192 tokens"
    ),
    "openai/error_invalid_api_key.http": Expect(
        code="provider_auth", message="Incorrect API key provided: ***"
    ),
    "openai/error_model_not_found.http": Expect(
        code="provider_rejected", message="answered 404: The model `text-embedding-9`"
    ),
    "openai/error_rate_limit.http": Expect(code="provider_rate_limited", message="TPM"),
    "openai/error_quota.http": Expect(code="provider_rate_limited", message="quota"),
    "openai/error_server.http": Expect(code="provider_unavailable", message="answered 500"),
    "openai/error_gateway_html.http": Expect(
        code="provider_unavailable", message="<title>502 Bad Gateway</title>"
    ),
    "openai/error_not_supported.http": Expect(
        code="provider_unavailable", message="Start it with `--embeddings`"
    ),
    # an error object in a 200: not vectors, said so (its own words are not kept)
    "openai/error_in_200.http": Expect(code=BAD, message=NOT_ONE),
    "openai/malformed_truncated.http": Expect(code=BAD, message=NOT_ONE),
    "openai/malformed_cut_before_length.http": Expect(
        code="provider_unavailable", message="closed the connection in the middle"
    ),
    "openai/malformed_no_data.http": Expect(code=BAD, message=NOT_ONE),
    "openai/malformed_data_not_list.http": Expect(code=BAD, message=NOT_ONE),
    "openai/malformed_no_index.http": Expect(code=BAD, message=NOT_ONE),
    "openai/malformed_no_embedding.http": Expect(code=BAD, message=NOT_ONE),
    "openai/malformed_one_of_two.http": Expect(code=BAD, message="embedded 1 of 2 texts"),
    "openai/malformed_mixed_dimensions.http": Expect(code=BAD, message="mixed dimensions [2, 3]"),
    "openai/malformed_not_json.http": Expect(code=BAD, message=NOT_ONE),
    "openai/malformed_empty.http": Expect(code=BAD, message=NOT_ONE),
    "openai/malformed_not_http.http": Expect(code="provider_unavailable", message="not valid HTTP"),
    "ollama/normal.http": Expect(OLLAMA_VECTORS),
    "ollama/normal_chunked.http": Expect(OLLAMA_VECTORS),
    "ollama/error_model_not_found.http": Expect(
        code="provider_rejected", message='model "all-minilm" not found'
    ),
    "ollama/error_not_embedding_model.http": Expect(
        code="provider_rejected", message="does not support embeddings"
    ),
    "ollama/error_context_length.http": Expect(
        code="provider_rejected", message="exceeds the context length"
    ),
    "ollama/error_runner_killed.http": Expect(
        code="provider_unavailable", message="llama runner process has terminated"
    ),
    "ollama/error_busy.http": Expect(code="provider_unavailable", message="server busy"),
    # the older /api/embeddings answer (one `embedding`) to the newer /api/embed request
    "ollama/malformed_legacy_single.http": Expect(code=BAD, message=NOT_ONE),
    "ollama/malformed_one_of_two.http": Expect(code=BAD, message="embedded 1 of 2 texts"),
    "ollama/malformed_embeddings_null.http": Expect(code=BAD, message=NOT_ONE),
    "ollama/malformed_mixed_dimensions.http": Expect(code=BAD, message="mixed dimensions [1, 2]"),
    "ollama/malformed_cut_before_length.http": Expect(
        code="provider_unavailable", message="closed the connection in the middle"
    ),
}

Embedder = OpenAIEmbeddings | OllamaEmbeddings


def embedder(kind: str, wire: ReplayWire, limits: ProviderLimits | None = None) -> Embedder:
    limits = limits or ProviderLimits(retries=0)
    if kind == "openai":
        return OpenAIEmbeddings(wire, "http://model.test/v1", API_KEY, "m", limits)  # type: ignore[arg-type]
    return OllamaEmbeddings(wire, "http://model.test", "m", limits)  # type: ignore[arg-type]


async def embed(
    kind: str, answers: list[list[bytes]], texts: list[str] = TEXTS, **kw: object
) -> tuple[list[list[float]] | ProviderError, ReplayWire]:
    wire = ReplayWire(answers)
    try:
        result: list[list[float]] | ProviderError = await embedder(kind, wire, **kw).embed(texts)  # type: ignore[arg-type]
    except ProviderError as exc:
        result = exc
    await wire.drain()
    return result, wire


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_transcript_cut_anywhere(name: str) -> None:
    answer = http_transcript(f"embeddings/{name}")
    expect = EXPECTED[name]
    kind = name.split("/")[0]

    async def main() -> None:
        for how, reads in cuts(answer):
            result, _ = await embed(kind, [reads])
            if expect.code is None:
                assert result == expect.vectors, how
                continue
            assert isinstance(result, ProviderError), (how, result)
            assert result.code == expect.code, (how, result.message)
            assert expect.message in result.message, (how, result.message)
            assert API_KEY[:12] not in result.message, how

    asyncio.run(main())


def test_every_transcript_is_checked() -> None:
    root = TRANSCRIPTS / "embeddings"
    assert {str(p.relative_to(root)) for p in root.glob("*/*.http")} == set(EXPECTED)


@pytest.mark.parametrize(
    ("kind", "path", "auth"),
    [("openai", "http://model.test/v1/embeddings", f"Bearer {API_KEY}"), ("ollama", "", None)],
)
def test_request_shape(kind: str, path: str, auth: str | None) -> None:
    """`{model, input: [texts]}` to the format's path, the key only where one is set."""
    result, wire = asyncio.run(embed(kind, [[http_transcript(f"embeddings/{kind}/normal.http")]]))
    assert not isinstance(result, ProviderError)
    ((url, headers, body),) = wire.requests
    assert url == (path or "http://model.test/api/embed")
    assert headers.get("Authorization") == auth
    assert body == {"model": "m", "input": TEXTS}


def _answer(kind: str, vectors: list[list[float]]) -> bytes:
    if kind == "openai":
        data = [{"index": i, "embedding": v} for i, v in enumerate(vectors)]
        body = orjson.dumps({"object": "list", "data": data})
    else:
        body = orjson.dumps({"embeddings": vectors})
    return http_answer(b"HTTP/1.1 200 OK\nContent-Type: application/json\n\n" + body)


@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_batches_in_order_and_one_dimension_across_them(kind: str) -> None:
    texts = [f"t{i}" for i in range(130)]
    batches = [texts[0:64], texts[64:128], texts[128:]]
    answers = [[_answer(kind, [[float(t[1:]), 1.0] for t in batch])] for batch in batches]
    result, wire = asyncio.run(embed(kind, answers, texts))
    assert [body["input"] for _, _, body in wire.requests] == batches
    assert result == [[float(i), 1.0] for i in range(130)]

    answers = [[_answer(kind, [[0.0, 1.0]] * 64)], [_answer(kind, [[0.0]] * 64)]]
    result, _ = asyncio.run(embed(kind, answers, texts[:128]))
    assert isinstance(result, ProviderError)
    assert result.code == BAD
    assert "mixed dimensions [1, 2]" in result.message


@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_answer_longer_than_the_cap_is_refused_unread(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `MAX_ANSWER_BYTES` the answer is an error and its connection is dropped
    before the rest arrives."""
    monkeypatch.setattr(embeddings, "MAX_ANSWER_BYTES", 2000)
    answer = _answer(kind, [[0.123456789] * 200] * 2)
    reads = [answer[i : i + 100] for i in range(0, len(answer), 100)]
    result, wire = asyncio.run(embed(kind, [reads]))
    assert isinstance(result, ProviderError)
    assert "longer than 2000 bytes" in result.message
    assert wire.closed_early == 1


def test_error_answers_are_read_only_so_far() -> None:
    """A huge error answer: its first `MAX_ERROR_BODY_BYTES` are read, its message is cut
    to 500 characters, the rest is never read."""
    from tailwinds.providers.http import MAX_ERROR_BODY_BYTES

    body = b'{"error":{"message":"' + b"x" * (4 * MAX_ERROR_BODY_BYTES) + b'"}}'
    answer = http_answer(b"HTTP/1.1 503 Service Unavailable\n\n" + body)
    reads = [answer[i : i + 4096] for i in range(0, len(answer), 4096)]
    result, wire = asyncio.run(embed("openai", [reads]))
    assert isinstance(result, ProviderError)
    assert result.code == "provider_unavailable"
    assert len(result.message) < 600
    assert wire.closed_early == 1


def test_retried_while_the_server_is_busy_and_not_when_it_refuses() -> None:
    limits = ProviderLimits(retries=2, retry_backoff_s=0)
    busy = http_transcript("embeddings/openai/error_server.http")
    normal = http_transcript("embeddings/openai/normal.http")
    result, wire = asyncio.run(embed("openai", [[busy], [busy], [normal]], limits=limits))
    assert result == OPENAI_VECTORS
    assert len(wire.requests) == 3

    refused = http_transcript("embeddings/openai/error_context_length.http")
    result, wire = asyncio.run(embed("openai", [[refused], [normal]], limits=limits))
    assert isinstance(result, ProviderError)
    assert result.code == "provider_rejected"
    assert len(wire.requests) == 1


@pytest.mark.parametrize(
    "vector",
    [b'"AAAAAA=="', b'["0.1", "0.2"]', b"[]", b"[[0.1], [0.2]]", b"[0.1, null]", b"{}"],
    ids=["base64", "strings", "empty", "nested", "null", "object"],
)
def test_vectors_that_are_not_lists_of_numbers_are_refused(vector: bytes) -> None:
    """A base64 string (`encoding_format=base64`) would pass as a vector of its
    characters, and the others as garbage in the index: each is a bad answer."""
    body = b'{"data":[{"index":0,"embedding":%b},{"index":1,"embedding":[1, 2.5]}]}' % vector
    answer = http_answer(b"HTTP/1.1 200 OK\n\n" + body)
    result, _ = asyncio.run(embed("openai", [[answer]]))
    assert isinstance(result, ProviderError)
    assert "not one" in str(result), result  # not the count or the dimension check
