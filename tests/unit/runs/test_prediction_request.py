"""The prediction body as the server reads it, in process: bodies other servers' clients
send that are valid JSON but odd, and values nested too deep for the caps' own check."""

from __future__ import annotations

from typing import Any

import pytest

from tailwinds.errors import InvalidRequest
from tailwinds.runs.prediction_request import parse_request
from tailwinds.runs.request_caps import run_overrides


@pytest.mark.parametrize(
    ("raw", "question"),
    [
        # JavaScript cuts a string inside an emoji: half a surrogate pair, escaped
        (rb'{"question": "hi \ud83d"}', "hi \ufffd"),
        (rb'{"question": "\ude00 there"}', "\ufffd there"),
        # both halves: the character itself
        (rb'{"question": "\ud83d\ude00"}', "\U0001f600"),
    ],
)
def test_half_a_surrogate_pair_is_read_as_a_replacement_character(
    raw: bytes, question: str
) -> None:
    assert parse_request(raw).question == question


def test_half_a_surrogate_pair_in_history_and_keys_too() -> None:
    raw = rb'{"question": "q", "history": [{"role": "userMessage", "content": "a\ud83d"}]}'
    request = parse_request(raw)
    assert request.history is not None
    assert request.history[0].content == "a\ufffd"


@pytest.mark.parametrize("raw", [b'{"question": "x"', b'{"question": "\\ud83d"', b"[1]"])
def test_malformed_bodies_are_still_400s_naming_the_body(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_request(raw)
    assert refused.value.field == "request body"


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


def test_a_var_nested_too_deep_is_a_400_naming_it() -> None:
    run_overrides({"vars": {"shallow": nested(10)}}, "chat")
    with pytest.raises(InvalidRequest) as refused:
        run_overrides({"vars": {"deep": nested(300)}}, "chat")
    assert refused.value.field == "overrideConfig.vars.deep"
    assert "nested" in refused.value.message
    # the whole body nested that deep is read (orjson takes 1024 levels), then refused here
    deep = '{"a": ' * 300 + '"leaf"' + "}" * 300
    body = ('{"question": "q", "overrideConfig": {"vars": {"deep": ' + deep + "}}}").encode()
    request = parse_request(body)
    with pytest.raises(InvalidRequest):
        run_overrides(request.override_config, "chat")
