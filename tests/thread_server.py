"""Tailwinds in a thread of the test process, as httpx's suite runs its servers: uvicorn
with our own HTTP protocol on an event loop of its own, serving real HTTP over real
sockets, without a process to start (about a second of imports each) or to reach.

Tests whose subject is a process (signals, exit codes, start-up errors, workers, a server
that dies) start one with `conftest.start_server`; the rest share threads.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from tailwinds.config import Settings
from tailwinds.logs import formatted
from tailwinds.server.serve import GracefulServer, server_for


class ServerThread:
    """Where a test would hold a `subprocess.Popen`: `poll`, `wait`, `terminate` and
    `kill`, with a return code of 0 for a server that ended cleanly, 1 otherwise."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.server: GracefulServer | None = None
        self.returncode: int | None = None
        self._made = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"tailwinds:{settings.port}", daemon=True
        )
        self._thread.start()
        self._made.wait(30)

    def _run(self) -> None:
        # the lines of this server's thread only: the test process may hold several
        handler = formatted(logging.FileHandler(self.log_path), self.settings.log_format)
        ident = threading.get_ident()
        handler.addFilter(lambda record: record.thread == ident)
        handler.setLevel(self.settings.log_level.upper())
        root = logging.getLogger()
        root.addHandler(handler)
        if root.getEffectiveLevel() > handler.level:
            root.setLevel(handler.level)
        try:
            self.server = server_for(self.settings)
            self._made.set()
            self.server.run()
            self.returncode = 0 if self.server.started else 1
        except BaseException:
            logging.getLogger("tailwinds").exception("the server's thread failed")
            self.returncode = 1
        finally:
            self._made.set()
            root.removeHandler(handler)
            handler.close()

    @property
    def started(self) -> bool:
        return self.server is not None and self.server.started

    def poll(self) -> int | None:
        return self.returncode if not self._thread.is_alive() else None

    def wait(self, timeout: float | None = None) -> int:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the server's thread did not end within {timeout} s")
        assert self.returncode is not None
        return self.returncode

    def terminate(self) -> None:
        """As SIGTERM: streams get the shutdown grace, then the server returns."""
        if self.server is not None:
            self.server.handle_exit(signal.SIGTERM, None)

    def kill(self) -> None:
        if self.server is not None:
            self.server.should_exit = self.server.force_exit = True
