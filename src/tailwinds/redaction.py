"""Keep secrets out of text that leaves the process: error messages and log lines.
Imports nothing of ours."""

from __future__ import annotations

import re

# OpenAI and Anthropic key shapes, our API keys, and any bearer credential
_SECRET_SHAPES = re.compile(
    r"\b(?:sk-ant-[A-Za-z0-9_\-*]{4,}|sk-[A-Za-z0-9_\-*]{4,}|tw_[A-Za-z0-9_\-]{20,})"
    r"|(?i:bearer)\s+[^\s\"',]+"
)


def redact(text: str, secret: str | None = None) -> str:
    if secret:
        text = text.replace(secret, "***")
    return _SECRET_SHAPES.sub("***", text)
