"""Turn pydantic's errors into one sentence a person can act on, naming the field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

_EXPECTED = {
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "dict_type": "expected an object",
    "model_type": "expected an object",
    "model_attributes_type": "expected an object",
    "list_type": "expected a list",
    "missing": "required",
    "extra_forbidden": "unknown field",
    "json_invalid": "malformed JSON",
}


def describe_errors(errors: Iterable[Mapping[str, Any]], prefix: str = "") -> str:
    parts = []
    for error in errors:
        loc = ".".join(str(p) for p in error.get("loc", ()))
        where = ".".join(p for p in (prefix, loc) if p)
        what = _EXPECTED.get(error.get("type", ""), error.get("msg", "invalid"))
        parts.append(f"{where}: {what}" if where else what)
    return "; ".join(parts)


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    return describe_errors(exc.errors(include_url=False), prefix)
