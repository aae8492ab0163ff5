"""Text made storable on every database, and ids checked and kept to their column."""

from __future__ import annotations

import orjson

from tailwinds.store.storable import (
    KEY_LENGTH,
    REPLACEMENT,
    id_problem,
    storable_json,
    storable_key,
    storable_text,
)


def test_plain_text_is_the_same_object() -> None:
    text = "an answer with ünïcode and an emoji 😀, and U+FFFF \uffff"
    assert storable_text(text) is text


def test_nul_is_replaced() -> None:
    assert storable_text("binary\x00tail") == f"binary{REPLACEMENT}tail"
    assert storable_text("\x00") == REPLACEMENT


def test_lone_surrogates_are_replaced_and_split_pairs_joined() -> None:
    assert storable_text("a\ud800b") == f"a{REPLACEMENT}b"
    assert storable_text("\udfffend") == f"{REPLACEMENT}end"
    # an emoji whose UTF-16 halves arrived in two JSON chunks, concatenated
    assert storable_text("smile \ud83d" + "\ude00!") == "smile 😀!"
    assert storable_text("x\x00\ud83d").encode("utf-8") == "x\ufffd\ufffd".encode()


def test_every_result_encodes_as_utf8_without_nul() -> None:
    for text in ("\x00\ud800\udc00\udbff", "é\x00", "\ud800" * 3, "ok"):
        stored = storable_text(text)
        assert "\x00" not in stored
        stored.encode("utf-8")  # raises on a lone surrogate


def test_keys_fit_their_column_and_stay_distinct() -> None:
    short = "chat-1"
    assert storable_key(short) is short
    long_a, long_b = "a" * 300, "a" * 299 + "b"
    assert len(storable_key(long_a)) == KEY_LENGTH
    assert storable_key(long_a) == storable_key(long_a)
    assert storable_key(long_a) != storable_key(long_b)
    assert storable_key("x" * KEY_LENGTH) == "x" * KEY_LENGTH
    assert storable_key("a\x00b") == f"a{REPLACEMENT}b"


def test_id_problems_name_what_was_expected() -> None:
    assert id_problem("chat-1") is None
    assert id_problem("é" * KEY_LENGTH) is None
    assert "at most 255 characters, got 256" in (id_problem("s" * 256) or "")
    assert "control characters" in (id_problem("a\x00b") or "")
    assert "control characters" in (id_problem("line\nbreak") or "")
    assert "control characters" in (id_problem("half \ud800") or "")
    assert id_problem("") == "expected a non-empty string"


def test_json_with_lone_surrogates_is_cleaned_not_refused() -> None:
    tools = [{"tool": "t", "toolInput": {"q": "\ud800"}, "toolOutput": "nul\x00here"}]
    stored = storable_json(tools)
    assert orjson.loads(stored) == [
        {"tool": "t", "toolInput": {"q": REPLACEMENT}, "toolOutput": "nul\x00here"}
    ]
    assert "\x00" not in stored  # orjson escapes it as \\u0000
    assert storable_json([{"a": 1}]) == '[{"a":1}]'
