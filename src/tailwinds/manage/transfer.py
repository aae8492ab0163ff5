"""Export and import of a whole server's chatflows, for backups and moves between servers.

Secrets leave only when asked for with a passphrase, and then only encrypted with a key
derived from it (scrypt, then Fernet): the stored credentials, and the chatflows' inline
secret inputs. Without one, credentials stay behind and inline secrets travel masked.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken

from tailwinds import offload
from tailwinds.errors import InvalidRequest, TailwindsError
from tailwinds.manage.chatflows import ChatflowService, public
from tailwinds.runs.flow_secrets import reveal
from tailwinds.store.apikeys import ApiKeyRepository
from tailwinds.store.chatflows import ChatflowRepository
from tailwinds.store.credentials import CredentialRepository
from tailwinds.store.secrets import SecretBox

FORMAT = "tailwinds-export"
VERSION = 1
_KDF = {"n": 2**15, "r": 8, "p": 1}
MIN_PASSPHRASE = 8


def _fernet(passphrase: str, salt: bytes) -> Fernet:
    key = hashlib.scrypt(passphrase.encode(), salt=salt, dklen=32, maxmem=64 * 1024 * 1024, **_KDF)
    return Fernet(base64.urlsafe_b64encode(key))


class TransferService:
    def __init__(
        self,
        service: ChatflowService,
        chatflows: ChatflowRepository,
        credentials: CredentialRepository,
        api_keys: ApiKeyRepository,
        box: SecretBox,
    ) -> None:
        self.service = service
        self.chatflows = chatflows
        self.credentials = credentials
        self.api_keys = api_keys
        self.box = box

    async def export(self, passphrase: str | None) -> dict[str, Any]:
        chatflows = await self.chatflows.list()
        bundle: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "exportedAt": datetime.now(UTC).isoformat(),
            "chatflows": [public(chatflow) for chatflow in chatflows],
        }
        if passphrase is None:
            return bundle
        _check_passphrase(passphrase)
        credentials = []
        for credential in await self.credentials.list():
            data = await self.credentials.secret(credential.id, max_age_s=0)
            credentials.append({**credential.as_json(), "data": data})
        sealed = {
            "credentials": credentials,
            "flowData": {c.id: reveal(c.flow_data, self.box) for c in chatflows},
        }
        salt = secrets.token_bytes(16)
        bundle["secrets"] = {
            "kdf": "scrypt",
            **_KDF,
            "salt": base64.b64encode(salt).decode(),
            # scrypt of 32 MiB and the encryption: a worker thread's, not the loop's
            "token": await offload.lanes().computing.run(_seal, passphrase, salt, sealed),
        }
        return bundle

    async def import_(self, bundle: dict[str, Any], passphrase: str | None) -> dict[str, Any]:
        if bundle.get("format") != FORMAT or not isinstance(bundle.get("chatflows"), list):
            raise InvalidRequest(f"expected a {FORMAT} file", field="format")
        opened = await offload.lanes().computing.run(_open, bundle.get("secrets"), passphrase)
        report: dict[str, Any] = {"chatflows": [], "failed": [], "credentials": 0, "apiKeys": []}
        if bundle.get("secrets") and opened is None:
            report["note"] = "credentials and inline secrets were left out: no passphrase"
        renamed: dict[str, str] = {}  # credential id in the file -> here
        for credential in (opened or {}).get("credentials", []):
            made = await self.credentials.create(
                credential["name"], credential["provider"], credential["data"]
            )
            renamed[credential["id"]] = made.id
            report["credentials"] += 1
        known_keys = {key.id for key in await self.api_keys.list()}
        for chatflow in bundle["chatflows"]:
            flow_data = (opened or {}).get("flowData", {}).get(chatflow.get("id"))
            flow_data = copy.deepcopy(flow_data or chatflow.get("flowData") or {})
            for node in flow_data.get("nodes") or []:
                inputs = node.get("inputs") if isinstance(node, dict) else None
                if isinstance(inputs, dict) and inputs.get("credential") in renamed:
                    inputs["credential"] = renamed[inputs["credential"]]
            api_key_id = chatflow.get("apiKeyId")
            if api_key_id and api_key_id not in known_keys:
                # never open up a chatflow that was guarded: give it a key of its own
                given, key = await self.api_keys.create(f"imported for {chatflow.get('name')}")
                known_keys.add(given.id)
                report["apiKeys"].append({"id": given.id, "name": given.name, "key": key})
                api_key_id = given.id
            fields = {
                "name": chatflow.get("name") or "imported",
                "flow_data": flow_data,
                "api_key_id": api_key_id,
                "allowed_overrides": chatflow.get("allowedOverrides") or [],
                "allowed_origins": chatflow.get("allowedOrigins") or [],
                "rate_limit": chatflow.get("rateLimit"),
                "resume_grace_s": chatflow.get("resumeGraceSeconds"),
                "concurrent_turns": chatflow.get("concurrentTurns"),
                "approval_timeout_s": chatflow.get("approvalTimeoutSeconds"),
            }
            try:
                created = await self.service.create(fields)
            except TailwindsError as exc:
                report["failed"].append({"name": fields["name"], "error": str(exc)})
                continue
            report["chatflows"].append({"id": created["id"], "name": created["name"]})
        return report


def _check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise InvalidRequest(f"at least {MIN_PASSPHRASE} characters", field="passphrase")


def _seal(passphrase: str, salt: bytes, sealed: dict[str, Any]) -> str:
    return _fernet(passphrase, salt).encrypt(orjson.dumps(sealed)).decode()


def _open(sealed: Any, passphrase: str | None) -> dict[str, Any] | None:
    if not sealed or passphrase is None:
        return None
    try:
        salt = base64.b64decode(sealed["salt"])
        data: dict[str, Any] = orjson.loads(_fernet(passphrase, salt).decrypt(sealed["token"]))
    except (InvalidToken, KeyError, TypeError, ValueError) as exc:
        raise InvalidRequest(
            "does not open the secrets of this export", field="passphrase"
        ) from exc
    return data
