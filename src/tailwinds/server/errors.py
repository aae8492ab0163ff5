"""The one place exceptions become HTTP answers: `{"error": "<message>", "code": ...}`."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from tailwinds.engine.validation import describe_errors
from tailwinds.errors import RateLimited, TailwindsError

logger = logging.getLogger("tailwinds.server")


def json_response(
    data: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(data), status_code=status_code, headers=headers, media_type="application/json"
    )


def error_response(error: TailwindsError) -> Response:
    headers = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(getattr(error, "retry_after_s", 1))
    return json_response(
        {"error": error.message, "code": error.code}, status_code=error.status, headers=headers
    )


async def _tailwinds_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TailwindsError)
    return error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {**e, "loc": tuple(e["loc"][1:]) if e["loc"][:1] == ("body",) else e["loc"]}
        for e in exc.errors()
    ]
    return json_response(
        {
            "error": describe_errors(errors),
            "code": "invalid_request",
            "detail": [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in errors],
        },
        status_code=400,
    )


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return json_response(
        {"error": str(exc.detail), "code": "http_error"},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _unexpected(_request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error", exc_info=exc)
    return json_response({"error": "internal server error", "code": "internal"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TailwindsError, _tailwinds_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
