"""The published streaming page's Python, JavaScript and curl snippets, copied verbatim
(only the URL and the chatflow id replaced), against a real server and a mock model
that paces its tokens."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import RunningServer
from tests.mock_openai import MockOpenAI
from tests.requirements import missing, require_command
from tests.sse_frames import check_order, parse_frames, tokens_of

SEED = Path(__file__).parent.parent / "fixtures" / "api-streaming.seed.md"
PUBLISHED = Path(__file__).parents[3] / "shared" / "spec" / "api-streaming.seed.md"
PLACEHOLDER_URL = "https://your-tailwinds-instance.com"
PACE_S = 0.2
EXPECTED = "You said: Hello world!"


def snippet(language: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", SEED.read_text(), flags=re.S)
    assert len(blocks) == 1, f"expected one {language} block in the seed"
    return blocks[0]


def test_vendored_seed_is_the_published_page() -> None:
    if not PUBLISHED.exists():
        missing(str(PUBLISHED), "the published page comes with ../shared beside the checkout")
    assert SEED.read_text() == PUBLISHED.read_text()


@pytest.fixture(scope="module")
def paced_chatflow(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> str:
    return sqlite_server.model_chatflow(mock_llm.base_url, model=f"paced:{PACE_S}")


def run_streaming(command: list[str], mock_llm: MockOpenAI) -> tuple[str, float]:
    """Run a client; return its output and when its first output byte came."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    assert process.stdout is not None
    first = process.stdout.read(1)
    first_at = time.monotonic()
    rest, err = process.communicate(timeout=30)
    assert process.returncode == 0, err.decode()
    return (first + rest).decode(), first_at


def check_streamed_before_the_end(mock_llm: MockOpenAI, first_at: float) -> None:
    record = mock_llm.find("Hello world!")
    assert record.last_token_at is not None
    # the client printed the first token while the mock was still producing the rest
    assert first_at < record.last_token_at, (first_at, record.last_token_at)


def test_python_snippet(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, paced_chatflow: str, tmp_path: Path
) -> None:
    code = snippet("python")
    code = code.replace(PLACEHOLDER_URL, sqlite_server.url).replace(
        "your-chatflow-id", paced_chatflow
    )
    script = tmp_path / "client.py"
    script.write_text(code)
    output, first_at = run_streaming([sys.executable, str(script)], mock_llm)
    assert output == EXPECTED + "\nStream ended\n"
    check_streamed_before_the_end(mock_llm, first_at)


def test_javascript_snippet(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, paced_chatflow: str, tmp_path: Path
) -> None:
    node = require_command("node", "`apt-get install nodejs` (scripts/install-test-deps)")
    code = snippet("javascript")
    code = code.replace(PLACEHOLDER_URL, sqlite_server.url).replace(
        "your-chatflow-id", paced_chatflow
    )
    script = tmp_path / "client.mjs"
    script.write_text(code)
    output, first_at = run_streaming([node, str(script)], mock_llm)
    assert output == EXPECTED + "\nStream ended\n"
    check_streamed_before_the_end(mock_llm, first_at)


def test_curl_snippet(sqlite_server: RunningServer, paced_chatflow: str, tmp_path: Path) -> None:
    require_command("curl", "`apt-get install curl` (scripts/install-test-deps)")
    code = snippet("bash")
    code = code.replace(PLACEHOLDER_URL, sqlite_server.url).replace("{chatflow-id}", paced_chatflow)
    result = subprocess.run(["bash", "-c", code], capture_output=True, timeout=30, check=True)
    frames = parse_frames(result.stdout)
    check_order(frames)
    assert tokens_of(frames) == EXPECTED
