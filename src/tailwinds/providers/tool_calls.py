"""Tool calls streamed in pieces, assembled into whole `ToolCall`s, for every provider.

OpenAI's chat completions reference streams a call as deltas under `choices[0].delta
.tool_calls[]`: the first with `index`, `id` and `function.name`, the next ones with
`function.arguments` pieces. Servers that call themselves compatible differ: some repeat
the whole name in every delta (open-webui#22177), some send no `index`, some give two
calls the same `index` with different ids, some send whole calls one after the other at
one `index` (or none) with no ids at all. A delta belongs to the call its `id` names; with
no id, to the call last seen at its `index`; with neither, to the last call; unless that
call's arguments are already whole and the delta begins another (`ToolCallDeltas`).
"""

from __future__ import annotations

from typing import Any

import orjson

from tailwinds.errors import AnswerTooLong
from tailwinds.messages import INVALID_ARGUMENTS, MAX_INPUT_DEPTH, ToolCall, nested_deeper_than

# all the arguments of one answer's tool calls, in characters: a model that streams more
# is broken or hostile (the answer's text has its own cap, TAILWINDS_MAX_ANSWER_CHARS)
MAX_ARGUMENTS_CHARS = 1024 * 1024


def parse_arguments(raw: str) -> dict[str, Any]:
    """A call's arguments as the object they should be; anything else kept under
    `INVALID_ARGUMENTS`, so the agent can tell the model."""
    if not raw.strip():
        return {}
    try:
        arguments = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            # pieces cut inside a surrogate pair, each decoded alone (see lenient_json)
            arguments = orjson.loads(raw.encode("utf-16-le", "surrogatepass").decode("utf-16-le"))
        except (UnicodeDecodeError, orjson.JSONDecodeError):
            return {INVALID_ARGUMENTS: raw.encode("utf-8", "replace").decode()}
    if not isinstance(arguments, dict):
        return {INVALID_ARGUMENTS: raw}
    return checked_arguments(arguments)


def checked_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """Decoded arguments, unless nested past `MAX_INPUT_DEPTH` (then kept as invalid, so
    the agent tells the model, and nothing deeper reaches the events or the store)."""
    if nested_deeper_than(arguments, MAX_INPUT_DEPTH):
        return {INVALID_ARGUMENTS: f"arguments nested more than {MAX_INPUT_DEPTH} levels deep"}
    return arguments


class _Call:
    __slots__ = ("id", "name", "parts")

    def __init__(self, call_id: str | None, name: str = "") -> None:
        self.id = call_id
        self.name = name
        self.parts: list[str] = []

    def whole(self) -> bool:
        """Whether the arguments so far are a whole JSON value. Asked only when a delta
        could begin another call, and parsed only when they end as an object does: not a
        parse per delta."""
        if not self.parts or self.parts[-1].rstrip()[-1:] != "}":
            return False
        return parse_arguments("".join(self.parts)).keys() != {INVALID_ARGUMENTS}


class ToolCallDeltas:
    """OpenAI-style tool-call deltas in, whole calls out (in the order they began).

    A delta with no id (or its call's id) that would join a call whose arguments are
    already a whole JSON object begins a new call instead when it brings arguments that
    open a new object (`{`), or a name other than the call's: two calls sent whole, at
    one index or none, stay apart, while a name repeated in every delta of one call (or
    after its arguments) is still that call's name."""

    __slots__ = ("by_id", "by_index", "calls", "next_name", "size")

    def __init__(self) -> None:
        self.calls: list[_Call] = []
        self.by_index: dict[Any, _Call] = {}
        self.by_id: dict[str, _Call] = {}
        self.size = 0  # characters of arguments so far
        # a name sent alone after a call's arguments: the name of the call its arguments
        # begin, when they begin a new one
        self.next_name = ""

    def add(self, deltas: list[dict[str, Any]]) -> None:
        """Raises `AnswerTooLong` past `MAX_ARGUMENTS_CHARS`; `TypeError`/`AttributeError`
        on deltas of the wrong shape (the parser's malformed chunk)."""
        for delta in deltas:
            function = delta.get("function") or {}
            name = function.get("name")
            arguments = function.get("arguments")
            if arguments and type(arguments) is not str:
                arguments = orjson.dumps(arguments).decode()  # an object, not its text
            call = self._call_of(delta, name, arguments)
            if name and name != call.name:
                # a whole name repeated is set once; a longer one that extends it (servers
                # resending the name so far) replaces it; anything else is a next piece
                call.name = name if name.startswith(call.name) else call.name + name
            if arguments:
                self.size += len(arguments)
                if self.size > MAX_ARGUMENTS_CHARS:
                    raise AnswerTooLong(
                        f"the model's tool-call arguments passed {MAX_ARGUMENTS_CHARS} characters"
                    )
                call.parts.append(arguments)
                self.next_name = ""

    def _call_of(self, delta: dict[str, Any], name: Any, arguments: str | None) -> _Call:
        call_id = delta.get("id") or None
        index = delta.get("index")
        call = self.by_id.get(call_id) if call_id is not None else None
        if call is None:
            known = self.by_index.get(index) if index is not None else None
            if known is not None and (call_id is None or known.id in (None, call_id)):
                call = known
            elif known is None and index is None and call_id is None and self.calls:
                call = self.calls[-1]
            if call is not None and call.parts and self._begins_another(call, name, arguments):
                call = None
            if call is None:
                call = _Call(call_id, "" if name else self.next_name)
                self.calls.append(call)
        if call_id is not None and call.id is None:
            call.id = call_id  # a later delta names the call an earlier one began
        if call_id is not None:
            self.by_id[call_id] = call
        if index is not None:
            self.by_index[index] = call
        return call

    def _begins_another(self, call: _Call, name: Any, arguments: str | None) -> bool:
        """Whether a delta without a new id, for `call` (which has arguments), is the start
        of another call: arguments opening an object, or another name, after arguments
        that are whole. A name alone, the same, is kept for a call that may follow."""
        if arguments:
            opens = arguments.lstrip()[:1] == "{"
            return (opens or bool(name and name != call.name)) and call.whole()
        if name and name != call.name:
            return call.whole()
        if name:
            self.next_name = name
        return False

    def finished(self) -> list[ToolCall]:
        """The calls so far, whole; the assembler starts over."""
        out = [
            ToolCall(call.id or f"call_{n}", call.name, parse_arguments("".join(call.parts)))
            for n, call in enumerate(self.calls)
        ]
        self.calls = []
        self.by_index.clear()
        self.by_id.clear()
        self.next_name = ""
        return out
