"""Files to documents: text, markdown, CSV, JSON, PDF (pypdf) and HTML (trafilatura). A file
that cannot be read is refused with its name."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from tailwinds.errors import InvalidRequest, PayloadTooLarge, TailwindsError, UnreadableFile

Document = dict[str, Any]


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{name} is not UTF-8 text", field=f"files.{name}") from exc


def _plain(data: bytes, name: str) -> list[Document]:
    return [{"pageContent": _text(data, name), "metadata": {"source": name}}]


def _csv(data: bytes, name: str) -> list[Document]:
    try:
        rows = list(csv.DictReader(io.StringIO(_text(data, name))))
    except csv.Error as exc:
        raise InvalidRequest(f"{name} is not valid CSV: {exc}", field=f"files.{name}") from exc
    return [
        {
            "pageContent": "\n".join(f"{k}: {v}" for k, v in row.items() if k is not None),
            "metadata": {"source": name, "row": i + 1},
        }
        for i, row in enumerate(rows)
    ]


def _json(data: bytes, name: str) -> list[Document]:
    try:
        parsed = json.loads(_text(data, name))
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{name} is not valid JSON: {exc}", field=f"files.{name}") from exc
    items = parsed if isinstance(parsed, list) else [parsed]
    docs = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get("pageContent"), str):
            metadata = {"source": name, **(item.get("metadata") or {})}
            docs.append({"pageContent": item["pageContent"], "metadata": metadata})
        else:
            text = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False, indent=1)
            docs.append({"pageContent": text, "metadata": {"source": name, "item": i}})
    return docs


def _pdf(data: bytes, name: str) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise InvalidRequest(f"{name} is not a readable PDF: {exc}", field=f"files.{name}") from exc
    return [
        {"pageContent": text, "metadata": {"source": name, "page": i + 1}}
        for i, text in enumerate(pages)
        if text.strip()
    ]


def _html(data: bytes, name: str) -> list[Document]:
    import trafilatura

    text = trafilatura.extract(_text(data, name), include_comments=False, include_tables=True)
    if not text:
        raise InvalidRequest(f"{name} holds no readable text", field=f"files.{name}")
    return [{"pageContent": text, "metadata": {"source": name}}]


LOADERS: dict[str, Callable[[bytes, str], list[Document]]] = {
    ".txt": _plain,
    ".md": _plain,
    ".markdown": _plain,
    ".csv": _csv,
    ".json": _json,
    ".pdf": _pdf,
    ".html": _html,
    ".htm": _html,
}


def _at_most(documents: list[Document], max_documents: int | None, where: str) -> None:
    # in the worker: a file of a million rows is refused here, not sent back and refused
    if max_documents is not None and len(documents) > max_documents:
        raise PayloadTooLarge(
            f"{where}: more documents than one upsert may hold "
            "(TAILWINDS_MAX_UPSERT_DOCUMENTS); send them in several upserts"
        )


def load_file(name: str, data: bytes, max_documents: int | None = None) -> list[Document]:
    """The documents of an uploaded file, by its suffix; more than `max_documents` raises
    `PayloadTooLarge` naming it."""
    loader = LOADERS.get(PurePath(name).suffix.lower())
    if loader is None:
        known = ", ".join(sorted(LOADERS))
        raise InvalidRequest(
            f"{name}: no reader for this kind of file (known: {known})", field="files"
        )
    documents = [d for d in loader(data, name) if d["pageContent"].strip()]
    if not documents:
        raise InvalidRequest(f"{name} holds no text", field=f"files.{name}")
    _at_most(documents, max_documents, f"files ({name})")
    return documents


_BY_TYPE: dict[str, Callable[[bytes, str], list[Document]]] = {
    "text/html": _html,
    "application/xhtml+xml": _html,
    "application/pdf": _pdf,
    "text/plain": _plain,
    "text/markdown": _plain,
    "text/csv": _csv,
    "application/json": _json,
}


def load_fetched(
    url: str, content_type: str, data: bytes, max_documents: int | None = None
) -> list[Document]:
    """A page fetched for an upsert: read by its content type (else its path's suffix, else
    as HTML), its source the URL."""
    loader = _BY_TYPE.get(content_type) or LOADERS.get(PurePath(url.split("?")[0]).suffix.lower())
    documents = [d for d in (loader or _html)(data, url) if d["pageContent"].strip()]
    if not documents:
        raise InvalidRequest(f"{url} holds no text", field="urls")
    _at_most(documents, max_documents, url)
    return documents


async def read_file(name: str, data: bytes, max_documents: int | None = None) -> list[Document]:
    """`load_file` in a worker process of the parsing lane (`tailwinds.offload`): a file
    that takes too long, too much memory or crashes its reader is refused by name with a
    422, and the event loop never waits on a parser. Raises `ServerBusy` / `RateLimited`
    when the lane is full."""
    return await _in_worker(load_file, name, data, max_documents, name="", field=f"files.{name}")


async def read_fetched(
    url: str,
    content_type: str,
    data: bytes,
    reserved: Callable[[], None] | None = None,
    max_documents: int | None = None,
) -> list[Document]:
    """`load_fetched`, in a worker process like `read_file`; in the parsing lane's place
    `reserved` (`offload.ProcessLane.reserve`) when the download already held one."""
    return await _in_worker(
        load_fetched,
        url,
        content_type,
        data,
        max_documents,
        name=f"{url}: ",
        field="urls",
        reserved=reserved,
    )


async def _in_worker(
    fn: Callable[..., list[Document]],
    *args: Any,
    name: str,
    field: str,
    reserved: Callable[[], None] | None = None,
) -> list[Document]:
    """`name`: what begins a refusal's message, where `field` does not say it already."""
    from tailwinds import offload

    lane = offload.lanes().parsing
    try:
        return await lane.run(fn, *args, reserved=reserved)
    except offload.WorkTimeout as exc:
        raise UnreadableFile(
            f"{name}reading it took longer than {lane.timeout_s:g} s, so it was stopped "
            "(TAILWINDS_PARSE_TIMEOUT_S)",
            field=field,
        ) from exc
    except MemoryError as exc:
        raise UnreadableFile(
            f"{name}reading it needed more than {lane.memory_mb} MB, so it was stopped "
            "(TAILWINDS_PARSE_MAX_MEMORY_MB)",
            field=field,
        ) from exc
    except offload.WorkerLost as exc:
        raise UnreadableFile(f"{name}its reader failed ({exc})", field=field) from exc
    except TailwindsError:
        raise
    except Exception as exc:  # a parser's own bug on a crafted file: the file's fault
        raise UnreadableFile(
            f"{name}its reader failed ({type(exc).__name__})", field=field
        ) from exc
