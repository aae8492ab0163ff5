"""The caps on what a prediction's caller sends that is stored or sent on to a model,
checked before any stream starts (each refusal a 400 naming the field).

- `question`: at most `MAX_TEXT` characters;
- `chatId`: 1 to 255 characters (its column), no control characters;
- `overrideConfig.sessionId`: 1 to `MAX_SESSION_ID` characters, no control characters (one
  longer than its column is stored under a digest of the whole: `storable_key`);
- `overrideConfig.vars`: an object of at most `MAX_VARS` entries, names of 1 to
  `MAX_VAR_NAME` characters, each value a string of at most `MAX_TEXT` characters or any
  other JSON value of at most `MAX_TEXT` bytes as JSON;
- `history`: at most `MAX_HISTORY` items, each `content` at most `MAX_TEXT` characters.

The body as a whole is bounded first (`TAILWINDS_MAX_BODY_BYTES`).
"""

from __future__ import annotations

from typing import Any

import orjson

from tailwinds.errors import InvalidRequest
from tailwinds.store.storable import KEY_LENGTH, id_problem

MAX_TEXT = 100_000
MAX_HISTORY = 1000
MAX_VARS = 100
MAX_VAR_NAME = 100
# callers build session ids of their own (a user id and a thread, a URL): room for them
MAX_SESSION_ID = 1024


def check_id(value: Any, field: str, limit: int = KEY_LENGTH) -> str:
    """`value` as a chat or session id of at most `limit` characters, or a 400 naming
    `field`."""
    if not isinstance(value, str):
        raise InvalidRequest("expected a string", field=field)
    problem = id_problem(value, limit)
    if problem is not None:
        raise InvalidRequest(problem, field=field)
    return value


def run_overrides(overrides: dict[str, Any], chat_id: str) -> tuple[str, dict[str, Any]]:
    """The session id (the chat id when none is given) and the prompt variables of
    `overrideConfig`, checked against their caps."""
    session_id = overrides.get("sessionId")
    if session_id is None or session_id == "":
        session_id = chat_id
    else:
        check_id(session_id, "overrideConfig.sessionId", MAX_SESSION_ID)
    run_vars = overrides.get("vars")
    if run_vars is None:
        return session_id, {}
    if not isinstance(run_vars, dict):
        raise InvalidRequest("expected an object", field="overrideConfig.vars")
    if len(run_vars) > MAX_VARS:
        raise InvalidRequest(
            f"expected at most {MAX_VARS} variables, got {len(run_vars)}",
            field="overrideConfig.vars",
        )
    for name, value in run_vars.items():
        if not 1 <= len(name) <= MAX_VAR_NAME:
            raise InvalidRequest(
                f"expected variable names of 1 to {MAX_VAR_NAME} characters, got {len(name)}",
                field="overrideConfig.vars",
            )
        _check_var_value(value, f"overrideConfig.vars.{name}")
    return session_id, run_vars


def _check_var_value(value: Any, field: str) -> None:
    if isinstance(value, str):
        size, unit = len(value), "characters"
    else:
        try:
            size, unit = len(orjson.dumps(value)), "bytes of JSON"
        except orjson.JSONEncodeError as exc:  # nested past what JSON takes here
            raise InvalidRequest(
                "expected a value nested at most 254 levels deep", field=field
            ) from exc
    if size > MAX_TEXT:
        raise InvalidRequest(f"expected at most {MAX_TEXT} {unit}, got {size}", field=field)
