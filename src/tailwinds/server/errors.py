"""The one place exceptions become HTTP answers: `{"error": "<message>", "code": ...}`."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Send

from tailwinds.engine.validation import describe_errors
from tailwinds.errors import RateLimited, TailwindsError

logger = logging.getLogger("tailwinds.server")


class ErrorBody(BaseModel):
    """Every error answer: what is wrong, for a person, and a short code, for a program."""

    error: str
    code: str
    detail: list[Any] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "The request is malformed or a field has the wrong type (the error names it)",
        401: "A missing or wrong API key or admin token",
        403: "Not allowed from here",
        404: "No such chatflow or resource",
        409: "The chat is busy with another turn (`chat_busy`), or aborted",
        413: "The body is too large",
        415: "The body is not JSON (or, for uploads, multipart)",
        422: "A file could not be read in its time or memory (the error names it)",
        429: "Rate limited: see Retry-After",
        500: "The flow failed",
        502: "The model server failed",
        503: "Shutting down, or busy (server_busy: see Retry-After)",
        504: "The model server did not answer in time",
    }.items()
}


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


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first route on the path only
        headers["Allow"] = ", ".join(sorted(_methods_at(request)))
    return json_response(
        {"error": str(exc.detail), "code": "http_error"},
        status_code=exc.status_code,
        headers=headers,
    )


def _methods_at(request: Request) -> set[str]:
    methods = set()
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.routes):
            methods.add(method)
    return methods


async def _unexpected(_request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error", exc_info=exc)
    return json_response({"error": "internal server error", "code": "internal"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TailwindsError, _tailwinds_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """An error answer written by a middleware, before any route: the same
    `{"error", "code"}` body as every other."""
    body = orjson.dumps({"error": message, "code": code})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or ()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
