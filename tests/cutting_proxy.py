"""A TCP proxy that drops its first connection after the server sent `cut_after` token
events: a dropped connection, as a client sees it, while the server goes on."""

from __future__ import annotations

import contextlib
import socket
import threading


class CuttingProxy:
    def __init__(self, target_port: int, cut_after: int) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            cut = self.connections == 1
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, cut), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, cut: bool) -> None:
        seen = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
                seen += data.count(b"event: token")
                if cut and seen >= self.cut_after:
                    break
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
