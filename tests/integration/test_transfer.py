"""`tailwinds export` / `tailwinds import` between two servers: chatflows move, secrets
move only encrypted with a passphrase, guarded chatflows stay guarded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import RunningServer, start_server
from tests.mock_openai import MockOpenAI

CREDENTIAL_SECRET = "sk-transfer-credential-0123456789"
INLINE_SECRET = "sk-transfer-inline-9876543210"
PASSPHRASE = "correct horse battery staple"


def cli(*args: str, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TAILWINDS_")}
    return subprocess.run(
        [sys.executable, "-m", "tailwinds", *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**full_env, **env},
    )


@pytest.fixture
def servers(tmp_path: Path, postgres_url: str) -> tuple[RunningServer, RunningServer]:
    source = start_server(tmp_path / "a", f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    target = start_server(tmp_path / "b", postgres_url)
    yield source, target
    source.stop()
    target.stop()


def test_export_and_import_with_and_without_the_passphrase(
    servers: tuple[RunningServer, RunningServer], mock_llm: MockOpenAI, tmp_path: Path
) -> None:
    source, target = servers
    credential = requests.post(
        f"{source.url}/api/v1/credentials",
        json={"name": "openai", "provider": "openai", "data": {"apiKey": CREDENTIAL_SECRET}},
        timeout=5,
    ).json()
    key = requests.post(f"{source.url}/api/v1/apikeys", json={"name": "k"}, timeout=5).json()
    node = {
        "id": "m",
        "type": "chatOpenAI",
        "inputs": {"model": "echo", "baseUrl": mock_llm.base_url},
    }
    with_credential = dict(node, inputs={**node["inputs"], "credential": credential["id"]})
    with_inline = dict(node, inputs={**node["inputs"], "apiKey": INLINE_SECRET})
    source.create_chatflow({"nodes": [with_credential]}, name="uses a credential")
    source.create_chatflow({"nodes": [with_inline]}, name="guarded inline", apiKeyId=key["id"])
    store = {"id": "r", "type": "retriever", "inputs": {"documentStoreId": "nowhere"}}
    qa = {"id": "qa", "type": "conversationalRetrievalQAChain", "inputs": {}}
    # a store that exists on the source only
    store["inputs"]["documentStoreId"] = source.create_document_store(mock_llm.base_url, "s")
    source.create_chatflow(
        {
            "nodes": [node, store, qa],
            "edges": [
                {"source": "m", "target": "qa", "targetInput": "model"},
                {"source": "r", "target": "qa", "targetInput": "retriever"},
            ],
        },
        name="needs a store",
    )

    plain = tmp_path / "plain.json"
    done = cli("export", "-o", str(plain), url=source.url)
    assert done.returncode == 0, done.stderr
    sealed = tmp_path / "sealed.json"
    done = cli(
        "export",
        "--with-credentials",
        "-o",
        str(sealed),
        url=source.url,
        TAILWINDS_EXPORT_PASSPHRASE=PASSPHRASE,
    )
    assert done.returncode == 0, done.stderr
    for path in (plain, sealed):
        text = path.read_text()
        assert CREDENTIAL_SECRET not in text and INLINE_SECRET not in text
        names = {c["name"] for c in json.loads(text)["chatflows"]}
        assert {"uses a credential", "guarded inline", "needs a store"} <= names
    assert "secrets" not in json.loads(plain.read_text())
    assert "secrets" in json.loads(sealed.read_text())

    def names_on_target() -> list[str]:
        return sorted(
            c["name"] for c in requests.get(f"{target.url}/api/v1/chatflows", timeout=5).json()
        )

    before = names_on_target()
    wrong = cli("import", str(sealed), url=target.url, TAILWINDS_EXPORT_PASSPHRASE="not the one!")
    assert wrong.returncode != 0 and "passphrase" in wrong.stderr + wrong.stdout
    assert names_on_target() == before, "a wrong passphrase imports nothing"

    done = cli("import", str(sealed), url=target.url, TAILWINDS_EXPORT_PASSPHRASE=PASSPHRASE)
    assert done.returncode == 1, "one chatflow names a store this server does not have"
    assert "needs a store" in done.stderr and "documentStoreId" in done.stderr
    assert "1 credentials imported" in done.stdout
    new_key = done.stdout.split("new API key ", 1)[1].split(": ", 1)[1].split()[0]
    imported = {
        c["name"]: c for c in requests.get(f"{target.url}/api/v1/chatflows", timeout=5).json()
    }
    assert CREDENTIAL_SECRET not in done.stdout + done.stderr

    # the credential came along, encrypted, and the chatflow points at its new id
    answer = requests.post(
        f"{target.url}/api/v1/predictions/{imported['uses a credential']['id']}",
        json={"question": "moved with a credential"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert (
        mock_llm.find("moved with a credential").headers["Authorization"]
        == f"Bearer {CREDENTIAL_SECRET}"
    )

    # the guarded chatflow is guarded here too, by a new key, and its inline secret moved
    guarded = imported["guarded inline"]["id"]
    assert (
        requests.post(
            f"{target.url}/api/v1/predictions/{guarded}", json={"question": "x"}, timeout=10
        ).status_code
        == 401
    )
    answer = requests.post(
        f"{target.url}/api/v1/predictions/{guarded}",
        json={"question": "moved inline"},
        headers={"Authorization": f"Bearer {new_key}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert mock_llm.find("moved inline").headers["Authorization"] == f"Bearer {INLINE_SECRET}"

    # without the passphrase: no secrets, and the chatflow that needs one says what is missing
    done = cli("import", str(plain), url=target.url)
    assert "no credential with this id" in done.stderr
