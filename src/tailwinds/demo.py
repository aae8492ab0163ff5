"""`tailwinds demo docs-qa`: a chatflow that answers questions about a folder of markdown
(Tailwinds' own docs by default) with the local model and the local embeddings, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DOCS_QA_NAME = "Tailwinds docs Q&A"


def markdown_documents(folder: Path) -> list[dict[str, Any]]:
    """Every `.md` file under `folder` (and a README.md beside it), as documents."""
    paths = sorted(folder.rglob("*.md"))
    readme = folder.parent / "README.md"
    if readme.exists() and readme not in paths:
        paths.insert(0, readme)
    return [
        {"pageContent": path.read_text(errors="replace"), "metadata": {"source": path.name}}
        for path in paths
        if path.stat().st_size
    ]


def docs_qa_flow(store_id: str) -> dict[str, Any]:
    return {
        "nodes": [
            {
                "id": "model",
                "type": "chatLocal",
                "inputs": {"maxTokens": 256},
                "position": {"x": 40, "y": 40},
            },
            {
                "id": "retriever",
                "type": "retriever",
                "inputs": {"documentStoreId": store_id, "topK": 3},
                "position": {"x": 40, "y": 260},
            },
            {
                "id": "qa",
                "type": "conversationalRetrievalQAChain",
                "inputs": {},
                "position": {"x": 420, "y": 140},
            },
        ],
        "edges": [
            {"source": "model", "target": "qa", "targetInput": "model"},
            {"source": "retriever", "target": "qa", "targetInput": "retriever"},
        ],
    }


def install_docs_qa(client: Any, folder: Path) -> dict[str, Any]:
    """Make the store (local embeddings, markdown-aware splitting), ingest the folder, make
    the chatflow; returns the chatflow."""
    documents = markdown_documents(folder)
    if not documents:
        raise ValueError(f"no markdown under {folder}")
    store = client.document_stores.create(
        "Tailwinds docs",
        {"type": "localEmbeddings", "model": "all-MiniLM-L6-v2"},
        {"type": "markdown", "chunkSize": 800, "chunkOverlap": 100},
    )
    client.document_stores.upsert(store["id"], documents)
    return client.chatflows.create({"name": DOCS_QA_NAME, "flowData": docs_qa_flow(store["id"])})
