"""Which bodies count as JSON for the cross-site guard: only JSON makes a browser ask
before sending it cross-site (a CORS preflight)."""

from __future__ import annotations

import pytest

from tailwinds.server.cross_site import is_json, media_type


@pytest.mark.parametrize(
    ("content_type", "json"),
    [
        (b"application/json", True),
        (b"Application/JSON; charset=utf-8", True),
        (b"application/problem+json", True),
        (b"application/vnd.api+json ; x=1", True),
        (b"text/plain;charset=UTF-8", False),  # what `fetch` sends for a string body
        (b"application/x-www-form-urlencoded", False),
        (b"multipart/form-data; boundary=x", False),
        (b"text/json+json", False),
        (b"application/jsonp", False),
        (b"", False),
        (None, False),  # a Blob body in `fetch` sends no type at all
    ],
)
def test_json_media_types(content_type: bytes | None, json: bool) -> None:
    assert is_json(media_type(content_type)) is json
