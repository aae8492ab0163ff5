"""Document stores and retrieval over HTTP, on SQLite and PostgreSQL: upsert, replace,
atomicity, persistence, and a streamed answer whose sources come before its first token."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import RunningServer, start_server
from tests.mock_openai import MockOpenAI
from tests.requirements import require_command
from tests.sse_frames import check_order, parse_frames

CORPUS = [
    (
        "tides.md",
        "The tides are caused by the gravity of the moon and the sun pulling on the oceans.",
    ),
    (
        "bread.md",
        "To bake bread, mix flour, water, yeast and salt, knead the dough, let it rise, then bake.",
    ),
    (
        "volcano.md",
        "A volcano erupts when magma from deep inside the earth rises through the crust.",
    ),
    ("chess.md", "In chess the bishop moves diagonally and the rook moves along ranks and files."),
    ("coffee.md", "Espresso is brewed by forcing hot water through finely ground coffee beans."),
]
# a question and the source that answers it
LABELLED = [
    ("What makes the tides of the oceans?", "tides.md"),
    ("How do I bake bread with yeast?", "bread.md"),
    ("Why does a volcano erupt magma?", "volcano.md"),
    ("How does a bishop move in chess?", "chess.md"),
    ("How is espresso coffee brewed?", "coffee.md"),
]


def store(server: RunningServer, mock_llm: MockOpenAI, model: str = "bow", **splitter: Any) -> str:
    return server.create_document_store(
        mock_llm.base_url,
        "facts",
        model,
        splitter={"chunkSize": 200, "chunkOverlap": 20, **splitter},
    )


def upsert(
    server: RunningServer, store_id: str, docs: list[tuple[str, str]], timeout_s: float = 10
) -> requests.Response:
    return requests.post(
        f"{server.url}/api/v1/document-stores/{store_id}/upsert",
        json={
            "documents": [{"pageContent": text, "metadata": {"source": src}} for src, text in docs]
        },
        timeout=timeout_s,
    )


def query(
    server: RunningServer, store_id: str, text: str, mode: str = "hybrid", top_k: int = 2
) -> list[str]:
    response = requests.post(
        f"{server.url}/api/v1/document-stores/{store_id}/query",
        json={"query": text, "topK": top_k, "mode": mode},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return [hit["metadata"]["source"] for hit in response.json()]


def test_upsert_query_and_hit_at_k(server: RunningServer, mock_llm: MockOpenAI) -> None:
    store_id = store(server, mock_llm)
    first = upsert(server, store_id, CORPUS)
    assert first.status_code == 200, first.text
    assert first.json()["chunks"] == 5 and first.json()["embedded"] == 5
    for mode in ("vector", "keyword", "hybrid"):
        hits = sum(expected in query(server, store_id, q, mode) for q, expected in LABELLED)
        assert hits / len(LABELLED) >= 0.8, mode  # hit@2 on the labelled set
    details = requests.get(f"{server.url}/api/v1/document-stores/{store_id}", timeout=5).json()
    assert details["chunks"] == 5 and details["sources"]["tides.md"] == 1


def test_reupsert_replaces_and_reuses(server: RunningServer, mock_llm: MockOpenAI) -> None:
    store_id = store(server, mock_llm, model="reuse")
    long_text = " ".join(f"Sentence number {i} about gardens and roses." for i in range(20))
    upsert(server, store_id, [("garden.md", long_text)])
    calls = mock_llm.embedding_calls["reuse"]
    again = upsert(server, store_id, [("garden.md", long_text + " One more about tulips.")]).json()
    assert again["replaced"] >= 1
    assert again["embedded"] < again["chunks"]  # unchanged chunks kept their embeddings
    assert mock_llm.embedding_calls["reuse"] == calls + 1
    chunks = requests.get(
        f"{server.url}/api/v1/document-stores/{store_id}/chunks",
        params={"source": "garden.md"},
        timeout=5,
    ).json()
    assert len(chunks) == again["chunks"]
    assert "tulips" in chunks[-1]["pageContent"]
    deleted = requests.delete(
        f"{server.url}/api/v1/document-stores/{store_id}/sources",
        params={"source": "garden.md"},
        timeout=5,
    ).json()
    assert deleted["deleted"] == again["chunks"]


def test_failed_upsert_leaves_the_store_as_it_was(
    server: RunningServer, mock_llm: MockOpenAI
) -> None:
    model = f"fail-batch:3-{server.url[-5:]}"  # the third embeddings request fails
    store_id = store(server, mock_llm, model=model)
    ok = upsert(server, store_id, CORPUS[:1])
    assert ok.status_code == 200
    big = [(f"doc{i}.md", f"document {i} " + "words " * 60) for i in range(200)]  # > 2 batches
    failed = upsert(server, store_id, big)
    assert failed.status_code == 502
    assert "embedding backend down" in failed.json()["error"]
    details = requests.get(f"{server.url}/api/v1/document-stores/{store_id}", timeout=5).json()
    assert details["sources"] == {"tides.md": 1}


def test_bad_store_and_documents(server: RunningServer, mock_llm: MockOpenAI) -> None:
    bad = requests.post(
        f"{server.url}/api/v1/document-stores",
        json={"name": "x", "embedding": {"type": "nope", "model": "m"}},
        timeout=5,
    )
    assert bad.status_code == 400 and "embedding.type" in bad.json()["error"]
    store_id = store(server, mock_llm)
    empty = requests.post(
        f"{server.url}/api/v1/document-stores/{store_id}/upsert",
        json={"documents": [{"pageContent": ""}]},
        timeout=5,
    )
    assert empty.status_code == 400 and "documents.0.pageContent" in empty.json()["error"]
    assert requests.get(f"{server.url}/api/v1/document-stores/nope", timeout=5).status_code == 404


def qa_flow(mock_llm: MockOpenAI, store_id: str) -> dict[str, Any]:
    return {
        "nodes": [
            {
                "id": "chat_0",
                "type": "chatOpenAI",
                "inputs": {"model": "paced:0.02", "baseUrl": mock_llm.base_url},
            },
            {
                "id": "retriever_0",
                "type": "retriever",
                "inputs": {"documentStoreId": store_id, "topK": 2},
            },
            {"id": "memory_0", "type": "bufferWindowMemory", "inputs": {"k": 3}},
            {"id": "qa_0", "type": "conversationalRetrievalQAChain", "inputs": {}},
        ],
        "edges": [
            {"source": "chat_0", "target": "qa_0", "targetInput": "model"},
            {"source": "retriever_0", "target": "qa_0", "targetInput": "retriever"},
            {"source": "memory_0", "target": "qa_0", "targetInput": "memory"},
        ],
    }


def test_streamed_answer_sends_sources_first(server: RunningServer, mock_llm: MockOpenAI) -> None:
    store_id = store(server, mock_llm)
    upsert(server, store_id, CORPUS)
    chatflow_id = server.create_chatflow(qa_flow(mock_llm, store_id))["id"]
    response = requests.post(
        f"{server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": "How does a bishop move in chess?", "streaming": True},
        timeout=10,
    )
    frames = parse_frames(response.content)
    check_order(frames)
    names = [name for name, _ in frames]
    assert names.index("sourceDocuments") < names.index("token")
    sources = frames[names.index("sourceDocuments")][1]
    assert sources[0]["metadata"]["source"] == "chess.md"
    assert set(sources[0]) == {"pageContent", "metadata"}
    sent = mock_llm.find("How does a bishop move in chess?").body["messages"]
    assert (
        sent[0]["role"] == "system" and "[1] (chess.md) In chess the bishop" in sent[0]["content"]
    )

    # a follow-up is condensed with the history before retrieval; the JSON answer has sources
    chat_id = frames[0][1]["chatId"]
    answer = requests.post(
        f"{server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": "And the rook?", "chatId": chat_id},
        timeout=10,
    ).json()
    assert answer["sourceDocuments"]
    condensed = [r for r in mock_llm.records if "Follow-up: And the rook?" in json.dumps(r.body)]
    assert condensed


def test_unknown_store_is_refused_on_save(server: RunningServer, mock_llm: MockOpenAI) -> None:
    response = requests.post(
        f"{server.url}/api/v1/chatflows",
        json={"name": "x", "flowData": qa_flow(mock_llm, "missing-store")},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("nodes[retriever_0].inputs.documentStoreId")


@pytest.mark.parametrize("mode", ["vector"])
def test_persistence_across_restart(
    mode: str, mock_llm: MockOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.conftest import start_server

    home = tmp_path_factory.mktemp("persist")
    url = f"sqlite+aiosqlite:///{home / 't.db'}"
    server = start_server(home, url)
    try:
        store_id = store(server, mock_llm)
        upsert(server, store_id, CORPUS)
    finally:
        server.stop()
    server = start_server(home, url)
    try:
        assert query(server, store_id, "espresso coffee", mode)[0] == "coffee.md"
    finally:
        server.stop()


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF holding `text`, written by hand (offsets and all)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def test_file_uploads(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    store_id = store(sqlite_server, mock_llm)
    files = [
        ("files", ("notes.txt", b"Kiwis are flightless birds of New Zealand.", "text/plain")),
        (
            "files",
            ("guide.md", b"# Guide\n\nSloths move slowly through the canopy.", "text/markdown"),
        ),
        ("files", ("table.csv", b"animal,food\npanda,bamboo\nkoala,eucalyptus\n", "text/csv")),
        (
            "files",
            (
                "items.json",
                json.dumps([{"pageContent": "Geckos climb glass."}]).encode(),
                "application/json",
            ),
        ),
        ("files", ("paper.pdf", tiny_pdf("Axolotls regrow their limbs."), "application/pdf")),
        (
            "files",
            (
                "page.html",
                b"<html><body><nav>menu</nav><article><h1>Owls</h1><p>Barn owls hunt mice at "
                b"night using their remarkable hearing, flying silently over fields.</p>"
                b"</article></body></html>",
                "text/html",
            ),
        ),
    ]
    response = requests.post(
        f"{sqlite_server.url}/api/v1/document-stores/{store_id}/upsert", files=files, timeout=20
    )
    assert response.status_code == 200, response.text
    assert set(response.json()["sources"]) == {
        "notes.txt",
        "guide.md",
        "table.csv",
        "items.json",
        "paper.pdf",
        "page.html",
    }
    assert query(sqlite_server, store_id, "axolotls limbs", "keyword", 1) == ["paper.pdf"]
    assert query(sqlite_server, store_id, "koala eucalyptus", "keyword", 1) == ["table.csv"]
    assert query(sqlite_server, store_id, "barn owls hearing", "keyword", 1) == ["page.html"]
    chunks = requests.get(
        f"{sqlite_server.url}/api/v1/document-stores/{store_id}/chunks",
        params={"source": "paper.pdf"},
        timeout=5,
    ).json()
    assert chunks[0]["metadata"]["page"] == 1


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("broken.pdf", b"%PDF-1.4 this is not a pdf", "broken.pdf is not a readable PDF"),
        ("latin1.txt", "café".encode("latin-1"), "latin1.txt is not UTF-8 text"),
        ("data.xlsx", b"PK...", "data.xlsx: no reader for this kind of file"),
        ("bad.json", b"{nope", "bad.json is not valid JSON"),
    ],
)
def test_bad_files_are_refused_by_name(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, name: str, data: bytes, message: str
) -> None:
    store_id = store(sqlite_server, mock_llm)
    upsert(sqlite_server, store_id, CORPUS[:1])
    files = [
        ("files", ("fine.txt", b"fine text", "text/plain")),
        ("files", (name, data, "application/octet-stream")),
    ]
    response = requests.post(
        f"{sqlite_server.url}/api/v1/document-stores/{store_id}/upsert", files=files, timeout=10
    )
    assert response.status_code == 400
    assert message in response.json()["error"]
    details = requests.get(
        f"{sqlite_server.url}/api/v1/document-stores/{store_id}", timeout=5
    ).json()
    assert details["sources"] == {"tides.md": 1}  # nothing of the refused upsert landed


def test_flowise_vector_upsert_route(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    store_id = store(sqlite_server, mock_llm)
    key = requests.post(f"{sqlite_server.url}/api/v1/apikeys", json={"name": "v"}, timeout=5).json()
    chatflow_id = sqlite_server.create_chatflow(qa_flow(mock_llm, store_id), apiKeyId=key["id"])[
        "id"
    ]
    url = f"{sqlite_server.url}/api/v1/vector/upsert/{chatflow_id}"
    files = [("files", ("lynx.txt", b"The lynx has tufted ears.", "text/plain"))]
    assert requests.post(url, files=files, timeout=10).status_code == 401
    ok = requests.post(
        url, files=files, headers={"Authorization": f"Bearer {key['key']}"}, timeout=10
    )
    assert ok.status_code == 200 and ok.json()["sources"] == ["lynx.txt"]
    plain = sqlite_server.model_chatflow(mock_llm.base_url)
    missing = requests.post(
        f"{sqlite_server.url}/api/v1/vector/upsert/{plain}", files=files, timeout=10
    )
    assert missing.status_code == 400


def test_ollama_embeddings(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    response = requests.post(
        f"{sqlite_server.url}/api/v1/document-stores",
        json={
            "name": "o",
            "embedding": {
                "type": "ollamaEmbeddings",
                "model": "nomic-embed-text",
                "baseUrl": mock_llm.root_url,
            },
        },
        timeout=5,
    )
    assert response.status_code == 201, response.text
    store_id = response.json()["id"]
    assert upsert(sqlite_server, store_id, CORPUS).status_code == 200
    assert query(sqlite_server, store_id, "espresso coffee beans", "vector", 1) == ["coffee.md"]
    missing = requests.post(
        f"{sqlite_server.url}/api/v1/document-stores",
        json={
            "name": "m",
            "embedding": {
                "type": "ollamaEmbeddings",
                "model": "missing",
                "baseUrl": mock_llm.root_url,
            },
        },
        timeout=5,
    ).json()
    failed = upsert(sqlite_server, missing["id"], CORPUS[:1])
    assert failed.status_code == 502 and "not found" in failed.json()["error"]


def test_metadata_filters(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    server = sqlite_server
    store_id = store(server, mock_llm)
    upsert(server, store_id, CORPUS)

    def query(body: dict[str, Any], text: str = "what makes the tides move") -> list[str]:
        response = requests.post(
            f"{server.url}/api/v1/document-stores/{store_id}/query",
            json={"query": text, "topK": 3, **body},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return [doc["metadata"]["source"] for doc in response.json()]

    assert query({})[0] == "tides.md"
    # a question both about the tides and bread: unfiltered, tides comes too; filtered,
    # bread alone, found in every mode (an empty answer would not pass)
    both = "the tides of the oceans, and how to bake bread"
    assert {"tides.md", "bread.md"} <= set(query({"mode": "hybrid"}, both))
    for mode in ("vector", "keyword", "hybrid"):
        assert query({"mode": mode, "filter": {"source": "bread.md"}}, both) == ["bread.md"]
    either = query({"mode": "vector", "filter": {"source": ["bread.md", "volcano.md"]}})
    assert set(either) == {"bread.md", "volcano.md"}
    assert query({"filter": {"source": "nowhere.md"}}) == []

    # on the retriever node, and per request when the chatflow allows the override
    flow = qa_flow(mock_llm, store_id)
    flow["nodes"][1]["inputs"]["metadataFilter"] = {"source": "volcano.md"}
    flow["nodes"][1]["riskyOverrides"] = ["metadataFilter"]  # a data scope: marked too
    chatflow_id = server.create_chatflow(flow, allowedOverrides=["metadataFilter"])["id"]

    def sources(body: dict[str, Any]) -> list[str]:
        frames = parse_frames(
            requests.post(
                f"{server.url}/api/v1/predictions/{chatflow_id}",
                json={"question": "what makes the tides move", "streaming": True, **body},
                timeout=15,
            ).content
        )
        return [
            d["metadata"]["source"] for n, data in frames if n == "sourceDocuments" for d in data
        ]

    assert set(sources({})) == {"volcano.md"}
    overridden = sources({"overrideConfig": {"metadataFilter": {"source": "tides.md"}}})
    assert set(overridden) == {"tides.md"}


@pytest.fixture
def pages() -> Iterator[str]:
    """A web server on this machine with an HTML page, a text file and a 404."""
    import http.server
    import threading

    content = {
        "/guide.html": (
            "text/html; charset=utf-8",
            "<html><head><title>Guide</title></head><body><nav>Home | About</nav>"
            "<article><h1>Leave policy</h1><p>Every employee gets thirty days of paid "
            "leave each year, and unused days carry over to the next year.</p>"
            "<p>Ask your manager two weeks ahead.</p></article></body></html>",
        ),
        "/notes.txt": ("text/plain", "Laptops are replaced every three years."),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in content:
                self.send_error(404)
                return
            kind, body = content[self.path]
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_upsert_urls(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, pages: str, tmp_path: Path
) -> None:
    # by default only public addresses are fetched: this one is not
    store_id = store(sqlite_server, mock_llm)
    refused = requests.post(
        f"{sqlite_server.url}/api/v1/document-stores/{store_id}/upsert",
        json={"urls": [f"{pages}/guide.html"]},
        timeout=10,
    )
    assert refused.status_code == 400 and "urls.0" in refused.json()["error"]

    intranet = start_server(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'i.db'}", TAILWINDS_INGEST_PRIVATE_URLS="true"
    )
    try:
        store_id = store(intranet, mock_llm)
        upsert_url = f"{intranet.url}/api/v1/document-stores/{store_id}/upsert"
        done = requests.post(
            upsert_url, json={"urls": [f"{pages}/guide.html", f"{pages}/notes.txt"]}, timeout=20
        )
        assert done.status_code == 200, done.text
        assert done.json()["sources"] == sorted([f"{pages}/guide.html", f"{pages}/notes.txt"])
        chunks = requests.get(
            f"{intranet.url}/api/v1/document-stores/{store_id}/chunks", timeout=5
        ).json()
        guide = " ".join(
            c["pageContent"] for c in chunks if c["metadata"]["source"].endswith("html")
        )
        assert "thirty days of paid leave" in guide and "Home | About" not in guide
        # a page that is not there: refused by name, and the store is as it was
        failed = requests.post(
            upsert_url, json={"urls": [f"{pages}/notes.txt", f"{pages}/gone"]}, timeout=20
        )
        assert failed.status_code == 400
        assert "gone answered HTTP 404" in failed.json()["error"]
        again = requests.get(
            f"{intranet.url}/api/v1/document-stores/{store_id}/chunks", timeout=5
        ).json()
        assert again == chunks
    finally:
        intranet.stop()


def test_background_upsert_reports_progress(server: RunningServer, mock_llm: MockOpenAI) -> None:
    store_id = store(server, mock_llm, model="bow")
    texts = [
        (f"part{i}.md", f"Section {i} says something about topic number {i}.") for i in range(9)
    ]
    started = requests.post(
        f"{server.url}/api/v1/document-stores/{store_id}/upsert",
        params={"background": "true"},
        json={"documents": [{"pageContent": t, "metadata": {"source": s}} for s, t in texts]},
        timeout=10,
    )
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["status"] == "running" and job["storeId"] == store_id
    url = f"{server.url}/api/v1/document-stores/{store_id}/jobs/{job['jobId']}"
    seen = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = requests.get(url, timeout=5).json()
        seen.append((state["done"], state["total"]))
        if state["status"] != "running":
            break
        time.sleep(0.02)
    assert state["status"] == "done", state
    assert state["result"]["chunks"] == 9 and state["done"] == state["total"] == 9
    assert all(done <= total for done, total in seen if total is not None)
    listed = requests.get(f"{server.url}/api/v1/document-stores/{store_id}", timeout=5).json()
    assert listed["chunks"] == 9

    # a failure is reported by the job, and the store is as it was
    failing = store(server, mock_llm, model=f"fail-batch:1-{server.url[-5:]}")
    failed = requests.post(
        f"{server.url}/api/v1/document-stores/{failing}/upsert?background=true",
        json={"documents": [{"pageContent": "x y z", "metadata": {"source": "a"}}]},
        timeout=10,
    ).json()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = requests.get(
            f"{server.url}/api/v1/document-stores/{failing}/jobs/{failed['jobId']}", timeout=5
        ).json()
        if state["status"] != "running":
            break
        time.sleep(0.05)
    assert state["status"] == "failed" and state["error"]["code"].startswith("provider")
    unknown = requests.get(f"{server.url}/api/v1/document-stores/{store_id}/jobs/nope", timeout=5)
    assert unknown.status_code == 404


def test_local_embeddings_need_no_server_and_find_paraphrases(
    sqlite_server: RunningServer,
) -> None:
    """The real all-MiniLM-L6-v2, offline: a paraphrase ranks above unrelated sentences,
    which a bag of words could not do here (the paraphrase shares no word with the query)."""
    created = requests.post(
        f"{sqlite_server.url}/api/v1/document-stores",
        json={
            "name": "local",
            "embedding": {"type": "localEmbeddings", "model": "all-MiniLM-L6-v2"},
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    store_id = created.json()["id"]
    corpus = [
        ("feline.md", "A kitten is napping on the rug."),
        ("markets.md", "Stock prices fell sharply after the central bank raised rates."),
        ("weather.md", "Heavy rain and strong winds are expected along the coast tomorrow."),
    ]
    # the first upsert loads the embedding model into the server (torch): seconds, once
    upsert(sqlite_server, store_id, corpus, timeout_s=120).raise_for_status()
    found = requests.post(
        f"{sqlite_server.url}/api/v1/document-stores/{store_id}/query",
        json={"query": "the cat sleeps on the carpet", "topK": 3, "mode": "vector"},
        timeout=30,
    ).json()
    assert found[0]["metadata"]["source"] == "feline.md"
    scores = {d["metadata"]["source"]: d["metadata"]["score"] for d in found}
    assert scores["feline.md"] > 0.5 > scores["markets.md"]
    wrong = requests.post(
        f"{sqlite_server.url}/api/v1/document-stores",
        json={"name": "x", "embedding": {"type": "localEmbeddings", "model": "bge-large"}},
        timeout=10,
    )
    assert wrong.status_code == 400 and "all-MiniLM-L6-v2" in wrong.json()["error"]


def test_offline_docs_demo(sqlite_server: RunningServer, tmp_path: Path) -> None:
    """`tailwinds demo docs-qa`: local embeddings, the local model, the sources first."""
    import subprocess
    import sys

    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / "README.md").write_text("# Widgets\n\nWidgets are configured in widgets.toml.\n")
    (docs / "resume.md").write_text(
        "# Resuming\n\nA dropped stream is resumed with the Last-Event-ID header, "
        "within the grace period the request asked for.\n"
    )
    (docs / "billing.md").write_text("# Billing\n\nInvoices are sent on the first of the month.\n")
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "tailwinds",
            "demo",
            "docs-qa",
            "--docs",
            str(docs),
            "--url",
            sqlite_server.url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    chatflow_id = made.stdout.split(": ", 1)[1].split()[0]
    response = requests.post(
        f"{sqlite_server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": "How do I resume a dropped stream?", "streaming": True},
        timeout=120,
    )
    frames = parse_frames(response.content)
    check_order(frames)
    names = [n for n, _ in frames]
    assert names[1] == "sourceDocuments" and "token" in names
    assert frames[1][1][0]["metadata"]["source"] == "resume.md"
    assert frames[-2][0] == "metadata"


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """A real Chroma server (`chroma run`, from the chromadb package), this test's own."""
    import os
    import subprocess
    import sys

    from tests.conftest import free_port

    binary = require_command(
        "chroma",
        "chromadb is in the dev extra: pip install -e '.[dev]'",
        str(Path(sys.executable).parent),
    )
    port = free_port()
    process = subprocess.Popen(
        [binary, "run", "--path", str(tmp_path / "chroma"), "--port", str(port)],
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/api/v2/heartbeat", timeout=1).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(10)


def test_a_chroma_server_as_the_vector_store(
    chroma_server: str, mock_llm: MockOpenAI, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    server = start_server(home, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    try:
        store_id = server.create_document_store(
            mock_llm.base_url, "on chroma", vectorStore={"type": "chroma", "url": chroma_server}
        )
        upsert(server, store_id, CORPUS).raise_for_status()
        collection = requests.post(
            f"{chroma_server}/api/v2/tenants/default_tenant/databases/default_database/collections",
            json={"name": f"tailwinds-{store_id}", "get_or_create": True},
            timeout=5,
        ).json()["id"]
        count_url = (
            f"{chroma_server}/api/v2/tenants/default_tenant/databases/default_database"
            f"/collections/{collection}/count"
        )
        chunks = requests.get(f"{server.url}/api/v1/document-stores/{store_id}", timeout=5).json()
        assert requests.get(count_url, timeout=5).json() == chunks["chunks"] == len(CORPUS)
        for question, expected in LABELLED:
            assert expected in query(server, store_id, question, "vector")
        filtered = requests.post(
            f"{server.url}/api/v1/document-stores/{store_id}/query",
            json={
                "query": "tides and the moon",
                "mode": "vector",
                "filter": {"source": "bread.md"},
            },
            timeout=10,
        ).json()
        assert [d["metadata"]["source"] for d in filtered] == ["bread.md"]

        # a source sent again replaces its vectors there too; deleting one removes them
        upsert(
            server, store_id, [("tides.md", "Tides rise and fall twice a day.")]
        ).raise_for_status()
        assert requests.get(count_url, timeout=5).json() == len(CORPUS)
        requests.delete(
            f"{server.url}/api/v1/document-stores/{store_id}/sources",
            params={"source": "bread.md"},
            timeout=5,
        ).raise_for_status()
        assert requests.get(count_url, timeout=5).json() == len(CORPUS) - 1
        # one chunk, by id: fetched, then deleted here and there
        some = requests.get(
            f"{server.url}/api/v1/document-stores/{store_id}/chunks", timeout=5
        ).json()[0]
        chunk_url = f"{server.url}/api/v1/document-stores/{store_id}/chunks/{some['id']}"
        assert requests.get(chunk_url, timeout=5).json() == some
        assert requests.delete(chunk_url, timeout=5).status_code == 204
        assert requests.get(chunk_url, timeout=5).status_code == 404
        assert requests.get(count_url, timeout=5).json() == len(CORPUS) - 2

        # the vectors are on the server: a restarted Tailwinds finds them without re-embedding
        server.stop()
        calls = mock_llm.embedding_calls["bow"]
        server = start_server(home, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
        assert "volcano.md" in query(server, store_id, "why does a volcano erupt", "vector")
        assert mock_llm.embedding_calls["bow"] == calls + 1  # the query only
        requests.delete(f"{server.url}/api/v1/document-stores/{store_id}", timeout=5)
        assert requests.get(count_url, timeout=5).status_code == 404
    finally:
        server.stop()


def test_the_published_python_snippet_prints_the_sources_before_the_answer(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, tmp_path: Path
) -> None:
    """The seed's Python client, extended by two lines to print `sourceDocuments`."""
    import subprocess
    import sys

    from tests.integration.test_seed_snippets import PLACEHOLDER_URL, snippet

    store_id = store(sqlite_server, mock_llm)
    upsert(sqlite_server, store_id, CORPUS).raise_for_status()
    chatflow_id = sqlite_server.create_chatflow(qa_flow(mock_llm, store_id))["id"]
    token_branch = (
        "                    if isinstance(data, dict) and 'token' in data:\n"
        "                        print(data['token'], end='', flush=True)\n"
    )
    code = snippet("python")
    assert token_branch in code
    code = code.replace(
        token_branch,
        token_branch
        + "                    elif isinstance(data, list):\n"
        + "                        print('SOURCES', *(d['metadata']['source'] for d in data))\n",
    )
    code = code.replace(PLACEHOLDER_URL, sqlite_server.url).replace("your-chatflow-id", chatflow_id)
    code = code.replace('"Hello world!"', '"Why does a volcano erupt?"')
    script = tmp_path / "client.py"
    script.write_text(code)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    first, rest = run.stdout.split("\n", 1)
    assert first.startswith("SOURCES ") and first.split()[1] == "volcano.md"
    assert rest.strip().endswith("Stream ended") and len(rest) > len("Stream ended") + 5
