"""Text every database takes: what a model, a tool or a caller wrote, made storable.

PostgreSQL's `text` refuses U+0000 ("invalid byte sequence for encoding UTF8: 0x00",
https://www.postgresql.org/docs/current/datatype-character.html), and no driver can
encode a lone UTF-16 surrogate (U+D800-U+DFFF) as UTF-8: one such character in one row
used to fail the whole transaction. Each is replaced by U+FFFD, the replacement character,
so the rest of the text is kept and the spot stays visible. A surrogate pair split in two
(an emoji whose halves arrived in two JSON chunks) is joined back into its character.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any, TypeVar

import orjson

REPLACEMENT = "\ufffd"
# a chat or session id is a key of the `chat_messages` table: String(255)
KEY_LENGTH = 255

_SURROGATE = re.compile("[\ud800-\udfff]")
# what an id may not hold: C0 and C1 controls (NUL among them), DEL, lone surrogates
_NOT_IN_ID = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` without the characters a database refuses (see the module's docstring).
    The same string, not a copy, when there is nothing to change (the common case)."""
    if "\x00" in text:
        text = text.replace("\x00", REPLACEMENT)
    return _encodable(text)


def _encodable(text: str) -> str:
    """`text` with its lone surrogates replaced and split pairs joined."""
    if not text.isascii() and _SURROGATE.search(text) is not None:
        # UTF-16 with surrogatepass joins well-formed pairs; what is left alone is replaced
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def storable_key(key: str, limit: int = KEY_LENGTH) -> str:
    """A chat or session id as it is stored and looked up: storable, and at most `limit`
    characters. A longer one (a `chatflowTool`'s sub-chat id, made of its parent's) keeps
    its head and ends in a SHA-256 of the whole, so it stays unique and the same id always
    maps to the same key. The API refuses ids over the limit before they get here."""
    key = storable_text(key)
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return key[: limit - len(digest) - 1] + "~" + digest


def id_problem(value: str, limit: int = KEY_LENGTH) -> str | None:
    """Why `value` cannot be a chat or session id (a sentence for a 400), or None."""
    if not value:
        return "expected a non-empty string"
    if len(value) > limit:
        return f"expected at most {limit} characters, got {len(value)}"
    if _NOT_IN_ID.search(value) is not None:
        return "expected no control characters (U+0000-U+001F, U+007F-U+009F)"
    return None


def storable_json(value: Any) -> str:
    """`value` as JSON text. orjson escapes U+0000 (as `\\u0000`, which every database
    takes) but refuses lone surrogates: those are replaced first."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return orjson.dumps(_cleaned(value)).decode()


def _cleaned(value: Any) -> Any:
    if isinstance(value, str):
        return _encodable(value)
    if isinstance(value, dict):
        return {_encodable(str(k)): _cleaned(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cleaned(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _encodable(str(value))


_INT64 = range(-(2**63), 2**63)
# orjson refuses past 255 levels; a setting, a tool's input or a document's metadata
# has no need of more than this
MAX_DEPTH = 64
T = TypeVar("T")


def json_problem(value: Any) -> str | None:
    """Why `value` (parsed JSON) cannot be stored as it is, as `path: what was expected`
    (the path from `value`, e.g. `nodes.0.inputs.temperature`), or None. orjson, which
    stores it, takes 64-bit integers only and writes an infinite float as `null`; no
    driver encodes a lone surrogate. For settings a caller wrote, which must come back as
    they were given (text a model wrote is made storable instead: `storable_json`).
    Nesting past MAX_DEPTH is refused too."""
    stack: list[tuple[str, int, Any]] = [("", 0, value)]
    while stack:
        path, depth, item = stack.pop()
        where = f"{path}: " if path else ""
        if depth > MAX_DEPTH:
            return f"{where}expected at most {MAX_DEPTH} levels of nesting"
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, int) and item not in _INT64:
            return f"{where}expected an integer of at most 64 bits"
        if isinstance(item, float) and not math.isfinite(item):
            return f"{where}expected a finite number"
        if isinstance(item, str) and _encodable(item) != item:
            return f"{where}expected text without lone UTF-16 surrogates"
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and _encodable(key) != key:
                    return f"{where}expected keys without lone UTF-16 surrogates"
                stack.append((f"{path}.{key}" if path else str(key), depth + 1, child))
        elif isinstance(item, list | tuple):
            stack.extend(
                (f"{path}.{n}" if path else str(n), depth + 1, child)
                for n, child in enumerate(item)
            )
    return None


def storable(value: T) -> T:
    """`value` itself, or ValueError saying why it cannot be stored as given
    (`json_problem`): a pydantic `AfterValidator` for fields stored as JSON."""
    problem = json_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value
