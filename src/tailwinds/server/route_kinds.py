"""Which routes are which, by path, for the middlewares that act before routing: the
public routes of a chatflow (its predictions, aborts, resumes, actions and upserts, opened by its
API key or by nothing, and the Flowise clients' `chatflows-streaming`,
`public-chatbotConfig` and `feedback`, whose `PUT` names a feedback id, not a chatflow,
and the AG-UI and AI SDK dialects' `agui` and `ai-sdk` routes, with the AI SDK's
reconnect `ai-sdk/{chatflowId}/{chatId}/stream`),
and the routes that take uploads (a larger body limit)."""

from __future__ import annotations

import re

# the chatflow's id is group `a`, `b`, `c`, `d` or `e`, whichever matched
PUBLIC_PATH = re.compile(
    r"^/api/v1/(?:"
    r"predictions?/(?P<a>[^/]+)(?:/abort|/stream/[^/]+|/actions/[^/]+)?"
    r"|chatmessage/abort/(?P<b>[^/]+)/[^/]+"
    r"|vector/upsert/(?P<c>[^/]+)"
    r"|(?:chatflows-streaming|public-chatbotConfig|feedback|agui|ai-sdk)/(?P<d>[^/]+)"
    r"|ai-sdk/(?P<e>[^/]+)/[^/]+/stream"
    r")$"
)

# the routes Flowise's clients call (the Flowise dialect): a refused origin gets a 403 they
# can read, with CORS headers and a plain-text body, where our own routes get a bare refusal
FLOWISE_PATH = re.compile(
    r"^/api/v1/(?:prediction|chatflows-streaming|public-chatbotConfig|feedback)/[^/]+$"
)

# bodies of documents or of a whole export: TAILWINDS_MAX_UPLOAD_BYTES, not the JSON limit
UPLOAD_PATH = re.compile(r"^/api/v1/(?:document-stores/[^/]+/upsert|vector/upsert/[^/]+|import)$")

# routes whose body may be an HTML form's multipart files as well as JSON
MULTIPART_PATH = re.compile(r"^/api/v1/(?:document-stores/[^/]+/upsert|vector/upsert/[^/]+)$")


def public_chatflow_id(path: str) -> str | None:
    """The chatflow a public route belongs to, or None for any other route."""
    match = PUBLIC_PATH.match(path)
    if match is None:
        return None
    return match["a"] or match["b"] or match["c"] or match["d"] or match["e"]
