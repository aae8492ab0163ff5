"""Encryption at rest for provider credentials: Fernet (AES-128-CBC + HMAC-SHA256) from
`cryptography`, with the key from TAILWINDS_SECRET_KEY or a key file made once in the
home folder, readable by its owner only.

TAILWINDS_SECRET_KEY is either a Fernet key (32 url-safe base64-encoded bytes), used as
is, or a passphrase of at least `MIN_PASSPHRASE` characters, from which the Fernet key is
derived with scrypt (RFC 7914; n=2**15, r=8, p=1, the fixed salt `PASSPHRASE_SALT`): the
same passphrase gives the same key on every node and every version, so what one stored
another decrypts."""

from __future__ import annotations

import base64
import binascii
import functools
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

KEY_FILE = "secret.key"
MIN_PASSPHRASE = 16
# fixed and public: the salt makes the derivation Tailwinds' own, the passphrase secret
PASSPHRASE_SALT = b"tailwinds/secret-key/v1"
_SCRYPT = {"length": 32, "n": 2**15, "r": 8, "p": 1}


class SecretBoxError(Exception):
    pass


def is_fernet_key(value: str) -> bool:
    """Whether `Fernet` takes `value` as a key (32 bytes in url-safe base64, as
    `Fernet.generate_key()` writes them): exactly its own test, so every key accepted
    before passphrases were is still used as is."""
    try:
        return len(base64.urlsafe_b64decode(value.encode("ascii"))) == 32
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False


def secret_key_problem(value: str) -> str | None:
    """What is wrong with `value` as TAILWINDS_SECRET_KEY (for a one-line start-up error),
    or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "TAILWINDS_SECRET_KEY: expected text in the environment's encoding (UTF-8), "
            "got bytes that are not"
        )
    if is_fernet_key(value) or len(value) >= MIN_PASSPHRASE:
        return None
    return (
        f"TAILWINDS_SECRET_KEY: expected a passphrase of at least {MIN_PASSPHRASE} "
        f"characters or a Fernet key, got {len(value)} characters"
    )


@functools.lru_cache(maxsize=4)  # the CLI's check and the server's start derive it once
def fernet_key(secret_key: str) -> bytes:
    """The Fernet key TAILWINDS_SECRET_KEY stands for (see the module's docstring).
    Raises `SecretBoxError` for a value that is neither a Fernet key nor long enough."""
    if is_fernet_key(secret_key):
        return secret_key.encode("ascii")
    problem = secret_key_problem(secret_key)
    if problem is not None:
        raise SecretBoxError(problem)
    derived = Scrypt(salt=PASSPHRASE_SALT, **_SCRYPT).derive(secret_key.encode("utf-8"))
    return base64.urlsafe_b64encode(derived)


class SecretBox:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError as exc:
            raise SecretBoxError(
                "the secret key must be a Fernet key: 32 url-safe base64-encoded bytes"
            ) from exc

    @classmethod
    def open(cls, secret_key: str | None, home: Path) -> SecretBox:
        """The box of TAILWINDS_SECRET_KEY, or of the home folder's key file (made on the
        first call). Raises `SecretBoxError` naming what is wrong."""
        if secret_key:
            return cls(fernet_key(secret_key))
        path = home / KEY_FILE
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            key = Fernet.generate_key()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key)
        try:
            return cls(path.read_bytes().strip())
        except SecretBoxError as exc:
            raise SecretBoxError(f"{path}: {exc} (or set TAILWINDS_SECRET_KEY)") from exc

    def encrypt(self, data: bytes) -> str:
        return self._fernet.encrypt(data).decode()

    def decrypt(self, token: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode())
        except InvalidToken as exc:
            raise SecretBoxError(
                "a stored secret cannot be decrypted: TAILWINDS_SECRET_KEY (or the home "
                "folder's secret.key) is not the key it was stored with"
            ) from exc
