"""Which `Host` names are served: the table behind the DNS rebinding defence."""

from __future__ import annotations

import pytest

from tailwinds.server.hosts import allowed_hosts, host_allowed


def test_without_a_token_and_no_list_only_local_names_and_addresses() -> None:
    patterns = allowed_hosts("", None)
    assert patterns == []
    for name in ("localhost", "app.localhost", "127.0.0.1", "[::1]", "10.0.0.5", "[fe80::1]"):
        assert host_allowed(name, patterns), name
    for name in ("evil.example", "localhost.evil.example", "127.0.0.1.nip.io", "", "[::1"):
        assert not host_allowed(name, patterns), name


def test_a_token_alone_lets_any_name_through() -> None:
    assert allowed_hosts("", "t" * 32) is None


def test_star_lets_any_name_through_even_without_a_token() -> None:
    assert allowed_hosts("a.example, *", None) is None


@pytest.mark.parametrize("token", [None, "t" * 32])
def test_the_list_applies_with_or_without_a_token(token: str | None) -> None:
    patterns = allowed_hosts("tw.example.com, *.corp.example., ", token)
    assert patterns == ["tw.example.com", "*.corp.example"]
    assert host_allowed("tw.example.com", patterns)
    assert host_allowed("a.b.corp.example", patterns)
    assert host_allowed("localhost", patterns)
    assert not host_allowed("corp.example", patterns)  # `*.` needs a label before it
    assert not host_allowed("xtw.example.com", patterns)
    assert not host_allowed("tw.example.com.evil.example", patterns)
