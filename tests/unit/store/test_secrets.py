"""TAILWINDS_SECRET_KEY: a Fernet key used as is, or a passphrase the key is derived from."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tailwinds.store.secrets import (
    MIN_PASSPHRASE,
    SecretBox,
    SecretBoxError,
    fernet_key,
    is_fernet_key,
)

PASSPHRASE = "correct horse battery staple"


def test_a_fernet_key_is_used_as_it_is(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    assert is_fernet_key(key.decode())
    assert fernet_key(key.decode()) == key
    # what was stored before passphrases were accepted still decrypts
    token = Fernet(key).encrypt(b"sk-stored-long-ago").decode()
    assert SecretBox.open(key.decode(), tmp_path).decrypt(token) == b"sk-stored-long-ago"


def test_a_passphrase_gives_the_same_key_every_time(tmp_path: Path) -> None:
    key = fernet_key(PASSPHRASE)
    assert is_fernet_key(key.decode())
    assert key != PASSPHRASE.encode()
    sealed = SecretBox.open(PASSPHRASE, tmp_path / "node-a").encrypt(b"sk-1")
    # another node (or a restart) with the same passphrase reads it
    fernet_key.cache_clear()
    assert SecretBox.open(PASSPHRASE, tmp_path / "node-b").decrypt(sealed) == b"sk-1"
    assert fernet_key(PASSPHRASE + "!") != fernet_key(PASSPHRASE)


def test_the_derivation_is_pinned() -> None:
    # the documented scrypt parameters and salt: changing them loses every stored secret
    assert fernet_key("sixteen chars ok") == b"eepHSzbICXq7eU4moAPhjrEGiXIlHwg8bJ74vHl9HPs="


@pytest.mark.parametrize("value", ["short", "x" * (MIN_PASSPHRASE - 1)])
def test_a_short_value_is_refused_naming_the_setting(value: str, tmp_path: Path) -> None:
    with pytest.raises(SecretBoxError) as caught:
        SecretBox.open(value, tmp_path)
    message = str(caught.value)
    assert message.startswith("TAILWINDS_SECRET_KEY: expected a passphrase of at least 16")
    assert value not in message


def test_a_broken_key_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("not a key")
    with pytest.raises(SecretBoxError, match=r"secret\.key"):
        SecretBox.open(None, tmp_path)
