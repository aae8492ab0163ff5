"""A prediction's `uploads` (Flowise's field, and the published page's `uploads` row):
`[{data, type, name, mime}]`, `type` `"file"` with `data` a data URL
(`data:<mime>;base64,<bytes>`, RFC 2397), or `type` `"url"` with `data` an http(s) URL the
server fetches (`upload_urls`: the outbound policy of caller-steered requests). Images go
to the model as image parts; text-like files (txt, md, csv, json, pdf) are read with the
document stores' loaders and their text joins the question. Every refusal is a 400
naming `uploads.<n>` and the file."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from tailwinds.config import Settings
from tailwinds.errors import InvalidRequest
from tailwinds.messages import FileText, ImagePart
from tailwinds.retrieval.loaders import read_file
from tailwinds.runs.upload_urls import fetch_upload
from tailwinds.store.chatflows import Chatflow

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
# the loaders pick their reader by the file's suffix
TEXT_TYPES = {
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/csv": ".csv",
    "application/json": ".json",
    "application/pdf": ".pdf",
}
UPLOAD_TYPES = (*IMAGE_TYPES, *TEXT_TYPES)
DEFAULT_MAX_FILES = 5
# a file's size once decoded; the whole body is capped by TAILWINDS_MAX_BODY_BYTES first
DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_FILE_TEXT = 100_000  # characters of a file's text the model is given
MAX_NAME = 255


async def read_uploads(
    raw: list[Any] | None, chatflow: Chatflow, settings: Settings
) -> list[ImagePart | FileText]:
    """The uploads, checked against the chatflow's limits (`chatbotConfig.uploads`:
    `maxFiles`, `maxFileBytes`, `allowedTypes`), URLs fetched (one after the other, each
    within `upload_urls.TIMEOUT_S`), images decoded, files read. `settings`: the
    operator's outbound policy and proxies, for the URLs."""
    if not raw:
        return []
    limits = (chatflow.chatbot_config or {}).get("uploads") or {}
    max_files = limits.get("maxFiles", DEFAULT_MAX_FILES)
    max_bytes = limits.get("maxFileBytes", DEFAULT_MAX_FILE_BYTES)
    allowed = limits.get("allowedTypes") or UPLOAD_TYPES
    if len(raw) > max_files:
        raise InvalidRequest(f"at most {max_files} files with a question", field="uploads")
    return [await _one(n, item, allowed, max_bytes, settings) for n, item in enumerate(raw)]


async def _one(
    n: int, item: Any, allowed: Any, max_bytes: int, settings: Settings
) -> ImagePart | FileText:
    field = f"uploads.{n}"
    if not isinstance(item, dict):
        raise InvalidRequest("expected {data, type, name, mime}", field=field)
    name = item.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise InvalidRequest(
            f"expected a file name of 1 to {MAX_NAME} characters", field=f"{field}.name"
        )
    kind = item.get("type")
    if kind == "url":
        mime, data = await _fetched(item, name, field, allowed, max_bytes, settings)
    elif kind == "file":
        mime, payload = _data_url(item.get("data"), name, field)
        mime = (item.get("mime") or mime).lower()
        _check_allowed(mime, allowed, name, field)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest(f"{name}: data is not base64", field=f"{field}.data") from exc
        if len(data) > max_bytes:
            raise InvalidRequest(f"{name}: larger than {max_bytes} bytes", field=field)
    else:
        raise InvalidRequest(
            f'{name}: expected type "file" (data a data URL) or "url" (data an http(s) URL)',
            field=f"{field}.type",
        )
    if mime in IMAGE_TYPES:
        return ImagePart(mime, base64.b64encode(data).decode())
    suffix = TEXT_TYPES[mime]
    try:
        documents = await read_file(name if name.lower().endswith(suffix) else name + suffix, data)
    except InvalidRequest as exc:
        reason = exc.message.split(": ", 1)[-1] if exc.field else exc.message
        raise InvalidRequest(f"{name} could not be read: {reason}", field=field) from exc
    text = "\n\n".join(d["pageContent"] for d in documents)
    return FileText(name, text[:MAX_FILE_TEXT])


def _data_url(value: Any, name: str, field: str) -> tuple[str, str]:
    """(mime, base64 payload) of `data:<mime>;base64,<payload>`."""
    if not isinstance(value, str) or not value.startswith("data:") or "," not in value:
        raise InvalidRequest(f"{name}: expected a data URL", field=f"{field}.data")
    head, payload = value[5:].split(",", 1)
    if not head.endswith(";base64"):
        raise InvalidRequest(f"{name}: expected a base64 data URL", field=f"{field}.data")
    return head[: -len(";base64")].split(";")[0], payload


def _check_allowed(mime: str, allowed: Any, name: str, field: str) -> None:
    if mime not in allowed:
        raise InvalidRequest(
            f"{name}: {mime} is not allowed here (allowed: {', '.join(allowed)})", field=field
        )


async def _fetched(
    item: dict[str, Any], name: str, field: str, allowed: Any, max_bytes: int, settings: Settings
) -> tuple[str, bytes]:
    """(mime, body) of a `type: "url"` item. A declared `mime` is checked before anything
    is fetched; without one the answer's Content-Type is the mime. An image must come
    back as the image type it claims to be: the model is told that mime."""
    declared = item.get("mime")
    if declared is not None and not isinstance(declared, str):
        raise InvalidRequest(f"{name}: expected mime to be a string", field=f"{field}.mime")
    mime = (declared or "").lower()
    if mime:
        _check_allowed(mime, allowed, name, field)
    data, content_type = await fetch_upload(
        item.get("data"), name=name, field=field, settings=settings, max_bytes=max_bytes
    )
    if not mime:
        mime = content_type
        _check_allowed(mime, allowed, name, field)
    if (mime in IMAGE_TYPES or content_type.startswith("image/")) and content_type != mime:
        raise InvalidRequest(
            f"{name}: the URL answered {content_type or 'no Content-Type'}, not {mime}",
            field=field,
        )
    return mime, data
