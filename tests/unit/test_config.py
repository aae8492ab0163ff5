"""Settings out of their range are refused with one line naming the setting."""

from __future__ import annotations

import pytest

from tailwinds.config import Settings


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MODE", "cluster", "TAILWINDS_MODE: expected one of local, queue"),
        ("LOG_FORMAT", "xml", "TAILWINDS_LOG_FORMAT: expected one of text, json"),
        ("LOG_LEVEL", "loud", "TAILWINDS_LOG_LEVEL: expected one of DEBUG"),
        ("PORT", "abc", "TAILWINDS_PORT: expected an integer"),
        ("PORT", "70000", "TAILWINDS_PORT: expected a port number up to 65535"),
        ("KEEPALIVE_S", "0", "TAILWINDS_KEEPALIVE_S: expected a number above 0"),
        ("KEEPALIVE_S", "nan", "TAILWINDS_KEEPALIVE_S: expected a finite number"),
        ("PROVIDER_RETRIES", "-1", "TAILWINDS_PROVIDER_RETRIES: expected 0 or more"),
        ("DATABASE_URL", "mysql://u:pw@db/x", "TAILWINDS_DATABASE_URL: expected a postgresql://"),
        ("REDIS_URL", "http://cache", "TAILWINDS_REDIS_URL: expected a redis://"),
        ("SECRET_KEY", "too short", "TAILWINDS_SECRET_KEY: expected a passphrase of at least"),
        ("INGEST_PRIVATE_URLS", "maybe", "TAILWINDS_INGEST_PRIVATE_URLS: expected true or false"),
        ("TRUSTED_PROXIES", "10.0.0.1,notanip", "TAILWINDS_TRUSTED_PROXIES: expected comma"),
        ("WRITE_TIMEOUT_S", "-5", "TAILWINDS_WRITE_TIMEOUT_S: expected 0 or more"),
        ("TURN_WAIT_S", "0", "TAILWINDS_TURN_WAIT_S: expected a number above 0"),
        ("MAX_CONNECTIONS", "-1", "TAILWINDS_MAX_CONNECTIONS: expected 0 or more"),
        ("BODY_TIMEOUT_S", "0", "TAILWINDS_BODY_TIMEOUT_S: expected a number above 0"),
        ("BODY_MIN_RATE", "-1", "TAILWINDS_BODY_MIN_RATE: expected 0 or more"),
        ("CLIENT_PREFIX_V6", "129", "TAILWINDS_CLIENT_PREFIX_V6: expected a prefix length up"),
        ("CLIENT_PREFIX_V4", "33", "TAILWINDS_CLIENT_PREFIX_V4: expected a prefix length up"),
        ("CLIENT_PREFIX_V6", "0", "TAILWINDS_CLIENT_PREFIX_V6: expected a number above 0"),
        ("AI_SDK_RESUME_GRACE_S", "3601", "TAILWINDS_AI_SDK_RESUME_GRACE_S: expected seconds"),
        ("SECRET_KEY", "p\udce4ssword-long-enough", "TAILWINDS_SECRET_KEY: expected text in"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(name: str, value: str, expected: str) -> None:
    with pytest.raises(ValueError) as caught:
        Settings.from_env({f"TAILWINDS_{name}": value})
    message = str(caught.value)
    assert message.startswith(expected), message
    assert "\n" not in message
    assert "pw@" not in message  # a database URL's password is not echoed


def test_good_settings_pass() -> None:
    settings = Settings.from_env(
        {
            "TAILWINDS_SECRET_KEY": "a passphrase of some length",
            "TAILWINDS_LOG_LEVEL": "debug",
            "TAILWINDS_DATABASE_URL": "postgres://u@db/tailwinds",
            "TAILWINDS_PROVIDER_RETRIES": "0",
        }
    )
    assert settings.database_url == "postgresql+asyncpg://u@db/tailwinds"
