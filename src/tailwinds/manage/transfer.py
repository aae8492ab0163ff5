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
from typing import Annotated, Any, Literal

import orjson
from cryptography.fernet import Fernet, InvalidToken
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from tailwinds import offload
from tailwinds.engine.validation import describe_validation_error
from tailwinds.errors import InvalidRequest, TailwindsError
from tailwinds.manage.chatflow_fields import ExportedChatflow, fields_of
from tailwinds.manage.chatflows import ChatflowService, public
from tailwinds.manage.credential_fields import CredentialBody
from tailwinds.runs.flow_secrets import reveal
from tailwinds.store.apikeys import ApiKeyRepository
from tailwinds.store.chatflows import ChatflowRepository
from tailwinds.store.credentials import CredentialRepository
from tailwinds.store.secrets import SecretBox
from tailwinds.store.storable import storable

FORMAT = "tailwinds-export"
VERSION = 1
_KDF = {"n": 2**15, "r": 8, "p": 1}
MIN_PASSPHRASE = 8
KEY_NAME_LENGTH = 200  # api_keys.name


class Bundle(BaseModel):
    """What `export` answers. Every chatflow in it is checked before anything is written:
    a file that is not in this shape is refused whole, naming the field."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["tailwinds-export"]
    version: Literal[1] = 1
    chatflows: list[ExportedChatflow]
    # {"kdf": "scrypt", "n", "r", "p", "salt", "token"}: read by `_open`
    secrets: dict[str, Any] | None = None

    @field_validator("chatflows")
    @classmethod
    def _ids_once(cls, chatflows: list[ExportedChatflow]) -> list[ExportedChatflow]:
        # the sealed secrets are found by id: two chatflows of one id would share them
        ids = [chatflow.id for chatflow in chatflows if chatflow.id]
        if len(ids) != len(set(ids)):
            raise ValueError("expected each chatflow's id once")
        return chatflows


class SealedCredential(CredentialBody):
    """As `POST /api/v1/credentials` takes one, and its id in the file (its date is not
    kept)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(max_length=200)


class Sealed(BaseModel):
    """What the passphrase opens: credentials, and flowData by the chatflow's id in the
    file, its inline secrets revealed."""

    credentials: list[SealedCredential] = Field(default_factory=list)
    flow_data: dict[str, Annotated[dict[str, Any], AfterValidator(storable)]] = Field(
        default_factory=dict, alias="flowData"
    )


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

    async def import_(self, bundle: Bundle, passphrase: str | None) -> dict[str, Any]:
        """Create the bundle's credentials (with the passphrase) and chatflows. Returns
        {"chatflows": [{id, name}], "failed": [{name, error}], "credentials": n,
        "apiKeys": [{id, name, key}], "note"?}: a chatflow this server refuses (a document
        store it does not have) is reported, the others are made. Raises InvalidRequest
        (naming `passphrase` or `bundle.secrets`) before writing anything."""
        opened = await offload.lanes().computing.run(_open, bundle.secrets, passphrase)
        report: dict[str, Any] = {"chatflows": [], "failed": [], "credentials": 0, "apiKeys": []}
        if bundle.secrets and opened is None:
            report["note"] = "credentials and inline secrets were left out: no passphrase"
        opened = opened or Sealed()
        renamed: dict[str, str] = {}  # credential id in the file -> here
        for credential in opened.credentials:
            made = await self.credentials.create(
                credential.name, credential.provider, credential.data
            )
            renamed[credential.id] = made.id
            report["credentials"] += 1
        known_keys = {key.id for key in await self.api_keys.list()}
        for chatflow in bundle.chatflows:
            fields = fields_of(chatflow)
            revealed = opened.flow_data.get(chatflow.id) if chatflow.id else None
            fields["flow_data"] = flow_data = copy.deepcopy(revealed or chatflow.flow_data)
            nodes = flow_data.get("nodes")
            for node in nodes if isinstance(nodes, list) else []:
                inputs = node.get("inputs") if isinstance(node, dict) else None
                if isinstance(inputs, dict) and inputs.get("credential") in renamed:
                    inputs["credential"] = renamed[inputs["credential"]]
            made_key: dict[str, str] | None = None
            if chatflow.api_key_id and chatflow.api_key_id not in known_keys:
                # never open up a chatflow that was guarded: give it a key of its own
                name = f"imported for {chatflow.name}"[:KEY_NAME_LENGTH]
                given, key = await self.api_keys.create(name)
                made_key = {"id": given.id, "name": given.name, "key": key}
                fields["api_key_id"] = given.id
            try:
                created = await self.service.create(fields)
            except BaseException as exc:
                if made_key is not None:  # a key that guards nothing is not left behind
                    await self.api_keys.delete(made_key["id"])
                if not isinstance(exc, TailwindsError):
                    raise
                report["failed"].append({"name": chatflow.name, "error": str(exc)})
                continue
            if made_key is not None:
                known_keys.add(made_key["id"])
                report["apiKeys"].append(made_key)
            report["chatflows"].append({"id": created["id"], "name": created["name"]})
        return report


def _check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise InvalidRequest(f"at least {MIN_PASSPHRASE} characters", field="passphrase")


def _seal(passphrase: str, salt: bytes, sealed: dict[str, Any]) -> str:
    return _fernet(passphrase, salt).encrypt(orjson.dumps(sealed)).decode()


def _open(sealed: dict[str, Any] | None, passphrase: str | None) -> Sealed | None:
    if not sealed or passphrase is None:
        return None
    try:
        salt = base64.b64decode(sealed["salt"])
        data = orjson.loads(_fernet(passphrase, salt).decrypt(sealed["token"]))
    except (InvalidToken, KeyError, TypeError, ValueError) as exc:
        raise InvalidRequest(
            "does not open the secrets of this export", field="passphrase"
        ) from exc
    try:
        return Sealed.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc, "bundle.secrets")) from None
