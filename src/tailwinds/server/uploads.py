"""The body of an upsert: JSON documents, or files to read into documents."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from starlette.datastructures import UploadFile

from tailwinds.errors import InvalidRequest, PayloadTooLarge
from tailwinds.retrieval.loaders import load_file

MAX_FILES = 100


async def read_documents(request: Request, max_bytes: int) -> list[Any]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"the upload is larger than {max_bytes} bytes")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await _files(request, max_bytes)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}", field="request body") from exc
    if not isinstance(body, dict) or not isinstance(body.get("documents"), list):
        raise InvalidRequest("expected a list (or send files as multipart)", field="documents")
    return body["documents"]


async def _files(request: Request, max_bytes: int) -> list[Any]:
    form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES)
    uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    if not uploads:
        raise InvalidRequest("expected one or more files in the field `files`", field="files")
    documents: list[Any] = []
    total = 0
    for upload in uploads:
        data = await upload.read()
        total += len(data)
        if total > max_bytes:
            raise PayloadTooLarge(f"the files are larger than {max_bytes} bytes together")
        documents.extend(load_file(upload.filename or "upload.txt", data))
    return documents
