"""Encryption at rest for provider credentials: Fernet (AES-128-CBC + HMAC-SHA256) from
`cryptography`, with the key from TAILWINDS_SECRET_KEY or a key file made once in the
home folder, readable by its owner only."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "secret.key"


class SecretBoxError(Exception):
    pass


class SecretBox:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError as exc:
            raise SecretBoxError(
                "TAILWINDS_SECRET_KEY must be a Fernet key: 32 url-safe base64-encoded bytes "
                "(make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from exc

    @classmethod
    def open(cls, secret_key: str | None, home: Path) -> SecretBox:
        if secret_key:
            return cls(secret_key.encode())
        path = home / KEY_FILE
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            key = Fernet.generate_key()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key)
        return cls(path.read_bytes().strip())

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
