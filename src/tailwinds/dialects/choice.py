"""Which dialect a prediction request asks for: the `dialect` query parameter, else a
`dialect` parameter of `Accept` (`Accept: text/event-stream; dialect=flowise`), else the
route's own (`/predictions/{id}`: ours, `/prediction/{id}`: Flowise's)."""

from __future__ import annotations

from tailwinds.errors import InvalidRequest

TAILWINDS = "tailwinds"
FLOWISE = "flowise"
DIALECTS = (TAILWINDS, FLOWISE)

MAX_ACCEPT = 1024  # a header we only look into for one parameter


def requested_dialect(query: str | None, accept: str | None, default: str) -> str:
    """The dialect asked for, or `default`; `InvalidRequest` (400 naming `dialect`) for a
    name we do not speak."""
    name = query if query is not None else _from_accept(accept)
    if name is None:
        return default
    name = name.strip().lower()
    if name not in DIALECTS:
        raise InvalidRequest(f"expected one of {', '.join(DIALECTS)}", field="dialect")
    return name


def _from_accept(accept: str | None) -> str | None:
    if not accept:
        return None
    for media_range in accept[:MAX_ACCEPT].split(","):
        for param in media_range.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "dialect":
                return value.strip().strip('"')
    return None
