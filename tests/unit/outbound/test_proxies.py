"""Which proxy a request goes through (tailwinds.outbound.proxies): the environment's
variables as curl, requests and httpx read them, TAILWINDS_OUTBOUND_PROXY over them,
NO_PROXY, and credentials never shown."""

from __future__ import annotations

import pytest

from tailwinds.config import Settings
from tailwinds.outbound.proxies import Proxy, ProxyRules, parse_proxy, proxy_rules


def test_the_environment_by_scheme_with_lower_case_winning() -> None:
    rules = proxy_rules(
        "",
        {
            "HTTPS_PROXY": "http://upper:3128",
            "https_proxy": "http://lower:3128",
            "HTTP_PROXY": "proxy.corp:8080",
        },
    )
    assert rules.for_url("https", "api.openai.com", 443) == Proxy("lower", 3128)
    assert rules.for_url("http", "ollama.corp", 11434) == Proxy("proxy.corp", 8080)


def test_all_proxy_fills_in_and_cgi_requests_ignore_http_proxy() -> None:
    rules = proxy_rules("", {"ALL_PROXY": "http://all:1", "HTTP_PROXY": "http://h:2"})
    assert rules.for_url("https", "x.com", 443) == Proxy("all", 1)
    assert rules.for_url("http", "x.com", 80) == Proxy("h", 2)
    cgi = proxy_rules("", {"HTTP_PROXY": "http://h:2", "REQUEST_METHOD": "GET"})
    assert cgi.for_url("http", "x.com", 80) is None  # httpoxy (CVE-2016-5385)


def test_the_setting_wins_and_off_turns_the_environment_off() -> None:
    env = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "internal.corp"}
    rules = proxy_rules("http://set:2", env)
    assert rules.for_url("https", "x.com", 443) == Proxy("set", 2)
    assert rules.for_url("http", "x.com", 80) == Proxy("set", 2)
    assert rules.for_url("https", "a.internal.corp", 443) is None  # NO_PROXY still holds
    assert proxy_rules("off", env).for_url("https", "x.com", 443) is None


@pytest.mark.parametrize(
    ("host", "port", "bypassed"),
    [
        ("corp.example", 443, True),
        ("api.corp.example", 443, True),
        ("notcorp.example", 443, False),
        ("wiki.intra", 8443, True),
        ("wiki.intra", 443, False),
        ("10.1.2.3", 80, True),
        ("11.1.2.3", 80, False),
        ("::1", 80, True),
        ("localhost", 80, True),
        ("LOCALHOST.", 80, True),
    ],
)
def test_no_proxy_entries(host: str, port: int, bypassed: bool) -> None:
    proxy = Proxy("p", 1)
    rules = ProxyRules(
        proxy, proxy, (".corp.example", "wiki.intra:8443", "10.0.0.0/8", "::1", "localhost")
    )
    assert rules.bypassed(host, port) is bypassed
    assert ProxyRules(proxy, proxy, ("*",)).bypassed("anything", 1)


def test_credentials_decoded_sent_as_basic_and_never_shown() -> None:
    proxy = parse_proxy("http://me:s%3Acret@proxy:3128")
    assert proxy.authorization == "Basic bWU6czpjcmV0"  # me:s:cret
    assert "cret" not in repr(proxy) and "cret" not in proxy.url
    assert parse_proxy("proxy").port == 80
    for bad, words in (
        ("https://me:secret@proxy:1", "https:// proxy is not supported"),
        ("socks5://me:secret@proxy:1", "socks5:// proxy is not supported"),
        ("http://me:secret@proxy:99999", "port"),
        ("http://me:secret@proxy:1/path", "no path"),
    ):
        with pytest.raises(ValueError, match=words) as caught:
            parse_proxy(bad)
        assert "secret" not in str(caught.value)


def test_settings_refuse_an_unusable_proxy_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="TAILWINDS_OUTBOUND_PROXY: a socks5") as caught:
        Settings.from_env({"TAILWINDS_OUTBOUND_PROXY": "socks5://u:hunter2@p:1"})
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError, match="HTTPS_PROXY"):
        Settings.from_env({"HTTPS_PROXY": "ftp://p:1"})
    settings = Settings.from_env({"https_proxy": "http://p:3", "TAILWINDS_MODEL_CLIENT": "aiohttp"})
    assert settings.proxies().for_url("https", "x.com", 443) == Proxy("p", 3)
    assert "p:3" not in repr(settings)
    with pytest.raises(ValueError, match="TAILWINDS_MODEL_CLIENT"):
        Settings.from_env({"TAILWINDS_MODEL_CLIENT": "curl"})
