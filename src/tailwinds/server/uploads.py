"""The body of an upsert: JSON documents, or files to read into documents."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from starlette.datastructures import UploadFile

from tailwinds import offload
from tailwinds.config import Settings
from tailwinds.errors import InvalidRequest, PayloadTooLarge
from tailwinds.outbound import Refused, Unreachable, fetch
from tailwinds.outbound.policies import upsert_policy
from tailwinds.retrieval.loaders import read_fetched, read_file
from tailwinds.retrieval.upsert_caps import check_documents

MAX_FILES = 100
MAX_URLS = 20


async def read_documents(request: Request, settings: Settings) -> list[Any]:
    """Documents given as JSON, as files, or as `urls` to fetch (public addresses only,
    unless TAILWINDS_INGEST_PRIVATE_URLS)."""
    documents, urls = await read_upsert(request, settings)
    return documents + await fetch_pages(urls, settings)


async def read_upsert(request: Request, settings: Settings) -> tuple[list[Any], list[Any]]:
    """The documents and the URLs of an upsert's body, the URLs not fetched yet."""
    # the body is at most TAILWINDS_MAX_UPLOAD_BYTES, declared or chunked: body_limit.py
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await _files(request, settings), []
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}", field="request body") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("expected a JSON object", field="request body")
    documents = body.get("documents", [])
    urls = body.get("urls", [])
    if not isinstance(documents, list) or not isinstance(urls, list) or not documents + urls:
        raise InvalidRequest(
            "expected a list of documents, of urls, or files as multipart", field="documents"
        )
    check_documents(len(documents), settings)
    if len(urls) > MAX_URLS:
        raise InvalidRequest(f"at most {MAX_URLS} per upsert", field="urls")
    for n, url in enumerate(urls):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidRequest("expected an http(s) URL", field=f"urls.{n}")
    return documents, urls


async def fetch_pages(urls: list[str], settings: Settings) -> list[Any]:
    """The documents of each page, fetched one after the other. Each holds a place in the
    parsing lane from before its download to the end of its reading: a client past its
    share, or a full lane, is refused (429 / 503) before a byte is fetched."""
    documents: list[Any] = []
    total = 0
    policy = upsert_policy(settings)
    for n, url in enumerate(urls):
        release = offload.lanes().parsing.reserve()
        try:
            page_cap = min(settings.max_page_bytes, settings.max_upload_bytes - total)
            try:
                page = await fetch(
                    url,
                    policy=policy,
                    proxies=settings.proxies(),
                    max_bytes=page_cap,
                    timeout_s=30,
                    decode=False,
                )
            except Refused as exc:
                raise InvalidRequest(f"{url}: {exc}", field=f"urls.{n}") from exc
            except Unreachable as exc:
                raise InvalidRequest(f"could not be fetched: {exc}", field=f"urls.{n}") from exc
            if page.status >= 400:
                raise InvalidRequest(f"{url} answered HTTP {page.status}", field=f"urls.{n}")
            total += len(page.data)
            if page.truncated:
                raise PayloadTooLarge(
                    f"urls.{n}: the page is larger than {page_cap} bytes "
                    "(TAILWINDS_MAX_PAGE_BYTES, and all the pages within "
                    "TAILWINDS_MAX_UPLOAD_BYTES)"
                )
            documents.extend(
                await read_fetched(
                    page.url,
                    page.content_type,
                    page.data,
                    reserved=release,
                    max_documents=settings.max_upsert_documents - len(documents),
                )
            )
        finally:
            release()  # idempotent: read_fetched gave it back already, unless it never ran
        check_documents(len(documents), settings, f"urls.{n}")
    return documents


async def _files(request: Request, settings: Settings) -> list[Any]:
    max_bytes = settings.max_upload_bytes
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
        name = upload.filename or "upload.txt"
        left = settings.max_upsert_documents - len(documents)
        documents.extend(await read_file(name, data, left))
        check_documents(len(documents), settings, f"files ({name})")
    return documents
