"""Flowise's own clients, installed for real: `flowise-sdk` and `flowise-embed` from npm
(`npm ci` from the committed lockfile in this folder, kept while the lockfile and Node's
version are unchanged), `flowise` from PyPI (the `dev` extra), and a reader of Flowise's
frames that owes nothing to `tailwinds.dialects`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import browser, page  # noqa: F401  (Chromium, for the widget)
from tests.requirements import require_command

HERE = Path(__file__).parent
MODULES = HERE / "node_modules"
STAMP = MODULES / ".tailwinds-installed"
NPM_CI_TIMEOUT_S = 480
HOW = "`apt-get install nodejs npm` (scripts/install-test-deps): Node.js 20 or later"


@pytest.fixture(scope="session")
def node() -> str:
    return require_command("node", HOW)


@pytest.fixture(scope="session")
def flowise_modules(node: str) -> Path:
    """tests/flowise/node_modules, installed by `npm ci` unless already installed from the
    same lockfile."""
    npm = require_command("npm", HOW)
    digest = hashlib.sha256()
    for name in ("package-lock.json", "package.json"):
        digest.update((HERE / name).read_bytes())
    digest.update(subprocess.run([node, "--version"], capture_output=True).stdout)
    state = digest.hexdigest()
    if not (STAMP.exists() and STAMP.read_text() == state):
        env = {**os.environ, "NO_COLOR": "1"}
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=HERE,
            env=env,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT_S,
        )
        if result.returncode != 0:
            pytest.fail(f"`npm ci` in tests/flowise failed:\n{result.stdout}\n{result.stderr}")
        STAMP.write_text(state)
    return MODULES


def flowise_frames(raw: bytes) -> list[dict[str, Any]]:
    """The frames of a stream in Flowise's dialect, strictly: each exactly
    `message:\\ndata: <one line of JSON>\\n\\n` (an `id:` line first when resumable), or a
    keep-alive comment. Each frame's JSON, with its `id` (an int, or None) added."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n"), f"stream does not end with a blank line: {text[-80:]!r}"
    frames = []
    for block in text[:-2].split("\n\n"):
        lines = block.split("\n")
        if all(line.startswith(":") for line in lines):
            continue
        number = int(lines.pop(0)[len("id: ") :]) if lines[0].startswith("id: ") else None
        assert len(lines) == 2 and lines[0] == "message:", block
        assert lines[1].startswith("data: "), block
        frame = json.loads(lines[1][len("data: ") :])
        assert set(frame) >= {"event", "data"}, frame
        frames.append({**frame, "id": number})
    return frames


def events_of(frames: list[dict[str, Any]]) -> list[str]:
    return [f["event"] for f in frames]


def text_of(frames: list[dict[str, Any]]) -> str:
    return "".join(f["data"] for f in frames if f["event"] == "token")
