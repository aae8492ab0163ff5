"""A run that waits for a person spends no work while it waits (issue 24): the server's
own CPU time (not wall time), read from /proc while one of its runs waits, stays at what
its keep-alive timer costs. A run that polled or spun would spend the whole wait."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tailwinds.client import Action, Tailwinds
from tests.conftest import start_server
from tests.integration.test_approvals import approval_chatflow, calls, text
from tests.mock_openai import MockOpenAI

WAIT_S = 5.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process (proc(5): fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
def test_a_waiting_run_costs_only_its_keepalive_timer(tmp_path: Path, mock_llm: MockOpenAI) -> None:
    home = tmp_path / "home"
    # its own process, so that its CPU time is the server's alone
    server = start_server(home, f"sqlite+aiosqlite:///{home / 'tailwinds.db'}")
    try:
        chatflow_id = approval_chatflow(server, mock_llm)
        pid = server.process.pid  # type: ignore[union-attr]
        with (
            Tailwinds(server.url) as client,
            client.stream(chatflow_id, calls("2 * 21"), raise_errors=False) as stream,
        ):
            events = []
            for event in stream:
                events.append(event)
                if isinstance(event, Action):
                    before = cpu_seconds(pid)
                    time.sleep(WAIT_S)  # the person thinks; the stream gets keep-alives
                    spent = cpu_seconds(pid) - before
                    stream.approve(event)
        # a tenth of a core at most, where a run that spun would take the whole wait
        assert spent < WAIT_S / 10, f"{spent:.2f} s of CPU in {WAIT_S} s of waiting"
        assert "42" in text(events)
    finally:
        server.stop()
