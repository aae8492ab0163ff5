"""A real forward proxy for the tests: proxy.py (PyPI `proxy.py`, in the dev extra) run as
its own process on a loopback port of its choosing, optionally asking for Basic proxy
credentials. It forwards plain http requests and opens CONNECT tunnels, as the proxies of
company networks do."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.requirements import missing

START_TIMEOUT_S = 60  # proxy.py's start on a loaded machine


@contextlib.contextmanager
def forward_proxy(tmp: Path, basic_auth: str | None = None) -> Iterator[int]:
    """The port of a proxy.py listening on 127.0.0.1 (`basic_auth`: "user:password" it
    requires); stopped on the way out."""
    if importlib.util.find_spec("proxy") is None:
        missing("the PyPI package proxy.py", "pip install -e '.[dev]'")
    port_file = tmp / f"proxy-{time.monotonic_ns()}.port"
    command = [
        sys.executable,
        "-m",
        "proxy",
        "--hostname",
        "127.0.0.1",
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--num-acceptors",
        "1",
        "--threaded",
        "--log-level",
        "WARNING",
    ]
    if basic_auth is not None:
        command += ["--basic-auth", basic_auth]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp)
    try:
        port = _wait_for_port(process, port_file)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_port(process: subprocess.Popen[bytes], port_file: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"proxy.py exited ({process.returncode}): {err[-2000:]}")
        text = port_file.read_text().strip() if port_file.exists() else ""
        if text.isdigit():
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", int(text)), timeout=1),
            ):
                return int(text)
        time.sleep(0.05)
    raise RuntimeError("proxy.py did not start listening in time")
