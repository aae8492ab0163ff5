"""`tailwinds mcp`: the endpoint from either spelling of the URL, and one clear line when
the server cannot be reached."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from tailwinds.cli import main
from tailwinds.mcp_bridge import mcp_url


def test_the_url_may_name_the_server_or_its_endpoint() -> None:
    assert mcp_url("http://h:3000") == "http://h:3000/mcp"
    assert mcp_url("http://h:3000/") == "http://h:3000/mcp"
    assert mcp_url("http://h:3000/mcp") == "http://h:3000/mcp"


def test_an_unreachable_server_is_one_line_not_a_traceback() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = CliRunner().invoke(main, ["mcp", "--url", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert "the MCP bridge to" in result.output and "ConnectError" in result.output
    assert "Traceback" not in result.output
