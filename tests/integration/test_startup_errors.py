"""A bad setting stops `tailwinds start` and `tailwinds worker` at once: exit 1, one line
on stderr naming the setting, no traceback. A passphrase as the secret key works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import start_server
from tests.mock_openai import MockOpenAI


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TAILWINDS_")},
        "TAILWINDS_HOME": str(tmp_path / "home"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "tailwinds", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("command", "env", "expected"),
    [
        (("start",), {"TAILWINDS_SECRET_KEY": "hunter2"}, "TAILWINDS_SECRET_KEY: expected"),
        (("start",), {"TAILWINDS_PORT": "http"}, "TAILWINDS_PORT: expected"),
        (("start",), {"TAILWINDS_MODE": "cluster"}, "TAILWINDS_MODE: expected"),
        (("start",), {"TAILWINDS_MODEL_CLIENT": "curl"}, "TAILWINDS_MODEL_CLIENT: expected"),
        (
            ("start",),
            {"TAILWINDS_OUTBOUND_PROXY": "socks5://me:hunter2@proxy:1080"},
            "TAILWINDS_OUTBOUND_PROXY: a socks5:// proxy is not supported",
        ),
        (("start",), {"HTTPS_PROXY": "http://me:hunter2@proxy:99999"}, "HTTPS_PROXY: expected"),
        (("worker",), {"TAILWINDS_SECRET_KEY": "hunter2"}, "TAILWINDS_SECRET_KEY: expected"),
        (("db", "upgrade"), {"TAILWINDS_KEEPALIVE_S": "-1"}, "TAILWINDS_KEEPALIVE_S: expected"),
        (
            ("start",),
            {"TAILWINDS_DATABASE_URL": "postgresql://nobody:hunter2@127.0.0.1:9/none"},
            "TAILWINDS_DATABASE_URL: expected a database that answers",
        ),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_1(
    tmp_path: Path, command: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    if command == ("worker",):
        env = {**env, "TAILWINDS_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    result = run_cli(tmp_path, *command, **env)
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: " + expected), lines
    assert "Traceback" not in result.stderr + result.stdout
    assert "hunter2" not in result.stderr


def test_a_broken_key_file_stops_the_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "secret.key").write_text("garbage")
    result = run_cli(tmp_path, "start")
    assert result.returncode == 1
    assert "secret.key" in result.stderr and "Traceback" not in result.stderr


def test_a_passphrase_seals_credentials_across_restarts(
    tmp_path: Path, mock_llm: MockOpenAI
) -> None:
    home, passphrase = tmp_path / "home", "a passphrase long enough"
    url = f"sqlite+aiosqlite:///{home / 'tailwinds.db'}"
    server = start_server(home, url, TAILWINDS_SECRET_KEY=passphrase)
    try:
        created = requests.post(
            f"{server.url}/api/v1/credentials",
            json={"name": "k", "provider": "openai", "data": {"apiKey": "sk-kept"}},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        credential = created.json()["id"]
    finally:
        server.stop()
    # the key file is not what decrypts: remove it, restart with the passphrase alone
    (home / "secret.key").unlink(missing_ok=True)
    again = start_server(home, url, "again.log", TAILWINDS_SECRET_KEY=passphrase)
    try:
        node = {
            "id": "m",
            "type": "chatOpenAI",
            "inputs": {"model": "echo", "baseUrl": mock_llm.base_url, "credential": credential},
        }
        flow = again.create_chatflow({"nodes": [node]})["id"]
        answer = requests.post(
            f"{again.url}/api/v1/predictions/{flow}", json={"question": "sealed"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        assert mock_llm.find("sealed").headers["Authorization"] == "Bearer sk-kept"
        assert passphrase not in again.log()
    finally:
        again.stop()
