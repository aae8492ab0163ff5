"""JSON chunks that orjson refuses because a provider cut a UTF-16 surrogate pair in two.

JSON escapes a character outside the BMP as two `\\uXXXX` escapes (RFC 8259 §7); a server
that escapes non-ASCII and streams token by token may send an emoji's high half as
`"\\ud83d"` in one chunk and the low half `"\\ude00"` in the next. orjson refuses each
alone ("no matched low surrogate"), so this module is reached only then, from the parsers'
`except` branch: the normal path pays nothing. The standard library's `json` accepts lone
surrogates; the halves are then joined across chunks by `SurrogateCarry`.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

REPLACEMENT = "\ufffd"


def loads_lenient(data: bytes | str) -> Any:
    """`data` parsed with lone surrogates allowed. Raises `ValueError` when it is not JSON
    (or not UTF-8) for this parser either."""
    return json.loads(data)


def whole_json(data: bytes | str) -> bool:
    """Whether `data` is a whole JSON text (lone surrogates allowed): the last line of a
    body that ended without its newline is taken only then, a cut one being dropped.
    Called once a stream, at its end."""
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            loads_lenient(data)
        except ValueError:
            return False
    return True


def paired(text: str) -> str:
    """`text` with its surrogate pairs made the characters they stand for, and any lone
    half replaced by U+FFFD (text that leaves must encode as UTF-8)."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _is_high(char: str) -> bool:
    return "\ud800" <= char <= "\udbff"


class SurrogateCarry:
    """Holds a high surrogate at the end of one text piece until the next piece, which
    should begin with its low half."""

    __slots__ = ("high",)

    def __init__(self) -> None:
        self.high = ""

    def join(self, text: str) -> str:
        """The piece to emit for `text` (a piece from `loads_lenient`): the held half put
        in front, a trailing high half held back."""
        if self.high:
            text = self.high + text
            self.high = ""
        if text and _is_high(text[-1]):
            self.high = text[-1]
            text = text[:-1]
        return paired(text) if text else text

    def flush(self) -> str:
        """At the end of the text: a half still held never found its pair."""
        if self.high:
            self.high = ""
            return REPLACEMENT
        return ""
