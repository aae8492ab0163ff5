"""What the embedding clients share: batching, the count check, one dimension."""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import Any

import orjson

from tailwinds.errors import ProviderBadResponse
from tailwinds.providers.http import Endpoint

# a batch of 64 texts at 3,072 dimensions is about 4 MB of JSON
MAX_ANSWER_BYTES = 64 * 1024 * 1024


async def embed_in_batches(
    endpoint: Endpoint,
    texts: list[str],
    batch_size: int,
    body: Callable[[list[str]], dict[str, Any]],
    vectors_of: Callable[[Any], list[list[float]]],
) -> list[list[float]]:
    """POST each batch's `body`, read its vectors with `vectors_of` (any KeyError or
    TypeError there means the answer was not one), and check that every text got one and
    all have the same size."""
    vectors: list[list[float]] = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        raw = await endpoint.fetch(orjson.dumps(body(batch)), MAX_ANSWER_BYTES)
        try:
            got = vectors_of(orjson.loads(raw))
            for vector in got:
                # a list of numbers, checked in C: a string (a base64 `encoding_format`)
                # or a list holding one is a TypeError, not a vector of its characters
                if type(vector) is not list or not vector:
                    raise TypeError("not a list of numbers")
                array("d", vector)
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ProviderBadResponse(
                f"{endpoint.name} sent an embeddings answer that is not one"
            ) from exc
        if len(got) != len(batch):
            raise ProviderBadResponse(f"{endpoint.name} embedded {len(got)} of {len(batch)} texts")
        vectors.extend(got)
    dimensions = {len(v) for v in vectors}
    if len(dimensions) > 1:
        raise ProviderBadResponse(f"{endpoint.name} mixed dimensions {sorted(dimensions)}")
    return vectors
