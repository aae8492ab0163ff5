"""The Python SDK and the command line against a real server."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tailwinds.client import (
    AsyncTailwinds,
    AuthenticationError,
    BadRequestError,
    End,
    Error,
    Metadata,
    NotFoundError,
    PredictionError,
    Start,
    StreamTimeout,
    Tailwinds,
    TailwindsClientError,
    Timeouts,
    Token,
)
from tests.conftest import RunningServer
from tests.cutting_proxy import CuttingProxy
from tests.mock_openai import MockOpenAI
from tests.requirements import require_command


@pytest.fixture(scope="module")
def chatflow_id(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> str:
    return sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.01")


def test_stream_yields_typed_events(sqlite_server: RunningServer, chatflow_id: str) -> None:
    with Tailwinds(sqlite_server.url) as client, client.stream(chatflow_id, "sdk stream") as stream:
        events = list(stream)
    assert type(events[0]) is Start
    assert [e.text for e in events if type(e) is Token] == ["You", " said:", " sdk", " stream"]
    assert type(events[-2]) is Metadata and type(events[-1]) is End
    assert stream.metadata is not None and stream.metadata.usage is not None
    assert stream.metadata.usage.completion_tokens == 4
    assert stream.chat_id == events[0].chat_id


def test_predict_and_conversation(
    sqlite_server: RunningServer, chatflow_id: str, mock_llm: MockOpenAI
) -> None:
    with Tailwinds(sqlite_server.url) as client:
        first = client.predict(chatflow_id, "sdk first")
        assert first.text == "You said: sdk first"
        with client.stream(chatflow_id, "sdk second", chat_id=first.chat_id) as stream:
            assert stream.text() == "You said: sdk second"
    assert len(mock_llm.find("sdk second").body["messages"]) == 3


def test_errors_before_the_stream(
    sqlite_server: RunningServer, chatflow_id: str, mock_llm: MockOpenAI
) -> None:
    with Tailwinds(sqlite_server.url) as client:
        with pytest.raises(NotFoundError, match="not found"), client.stream("nope", "x"):
            pass
        with pytest.raises(BadRequestError) as bad:
            client.predict(chatflow_id, "x", override_config={"temperature": 1})
        assert bad.value.status == 400 and "overrideConfig.temperature" in bad.value.message
        key = client.api_keys.create("sdk")
        keyed = client.chatflows.create(
            {
                "name": "keyed",
                "flowData": client.chatflows.get(chatflow_id)["flowData"],
                "apiKeyId": key["id"],
            }
        )
        with pytest.raises(AuthenticationError):
            client.predict(keyed["id"], "x")
    with Tailwinds(sqlite_server.url, api_key=key["key"]) as client:
        assert client.predict(keyed["id"], "sdk keyed").text == "You said: sdk keyed"


def test_error_event_raises_where_it_arrives(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    failing = sqlite_server.model_chatflow(mock_llm.base_url, model="cut:2")
    with Tailwinds(sqlite_server.url) as client:
        seen = []
        with pytest.raises(PredictionError) as failed, client.stream(failing, "sdk cut") as stream:
            for event in stream:
                seen.append(event)
        assert failed.value.code == "provider_unavailable"
        assert [e.text for e in seen if type(e) is Token] == ["You", " said:"]
        with client.stream(failing, "sdk cut raw", raise_errors=False) as stream:
            events = list(stream)
        assert type(events[-2]) is Error and type(events[-1]) is End


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


@contextmanager
def mute_server(first_bytes: bytes) -> Iterator[str]:
    """A server that answers every request with `first_bytes`, then says nothing."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        conns = []
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            conn.sendall(first_bytes)
            conns.append(conn)
        for conn in conns:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    listener.close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Answers with the headers and a start event, then says nothing."""
    start = b'event: start\ndata: {"chatId":"c","messageId":"m"}\n\n'
    with mute_server(STREAM_HEAD + b"%x\r\n%s\r\n" % (len(start), start)) as url:
        yield url


def test_idle_timeout(silent_server: str) -> None:
    timeouts = Timeouts(connect_s=2, first_event_s=2, idle_s=0.5)
    started = time.monotonic()
    with (
        Tailwinds(silent_server, timeout=timeouts) as client,
        pytest.raises(StreamTimeout),
        client.stream("x", "y") as stream,
    ):
        for _ in stream:
            pass
    assert time.monotonic() - started < 2.5

    async def run() -> None:
        async with AsyncTailwinds(silent_server, timeout=timeouts) as client:
            with pytest.raises(StreamTimeout, match=r"no event in 0\.5 s"):
                async with client.stream("x", "y") as stream:
                    async for _ in stream:
                        pass

    asyncio.run(run())


def test_async_client(sqlite_server: RunningServer, chatflow_id: str) -> None:
    async def run() -> None:
        async with AsyncTailwinds(sqlite_server.url) as client:
            async with client.stream(chatflow_id, "async one") as stream:
                assert await stream.text() == "You said: async one"
            answer = await client.predict(chatflow_id, "async two", chat_id=stream.chat_id)
            assert answer.chat_id == stream.chat_id
            with pytest.raises(NotFoundError):
                await client.predict("nope", "x")
            assert any(c["id"] == chatflow_id for c in await client.chatflows.list())

    asyncio.run(run())


def cli(*args: str, stdin: str | None = None, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tailwinds", *args, "--url", url],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_predict_chat_and_chatflows(
    sqlite_server: RunningServer, chatflow_id: str, mock_llm: MockOpenAI, tmp_path: Path
) -> None:
    result = cli("predict", chatflow_id, "cli question", url=sqlite_server.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "You said: cli question\n"
    assert "chat id:" in result.stderr
    plain = cli("predict", chatflow_id, "cli plain", "--no-stream", url=sqlite_server.url)
    assert plain.stdout == "You said: cli plain\n"
    missing = cli("predict", "nope", "x", url=sqlite_server.url)
    assert missing.returncode == 1 and "not found" in missing.stderr

    chat = cli("chat", chatflow_id, stdin="chat one\nchat two\n", url=sqlite_server.url)
    assert chat.returncode == 0, chat.stderr
    assert "You said: chat one" in chat.stdout and "You said: chat two" in chat.stdout
    assert len(mock_llm.find("chat two").body["messages"]) == 3  # same conversation

    exported = cli("chatflows", "export", chatflow_id, url=sqlite_server.url)
    path = tmp_path / "flow.json"
    path.write_text(exported.stdout)
    new_id = cli("chatflows", "import", str(path), url=sqlite_server.url).stdout.strip()
    assert new_id and new_id != chatflow_id
    listed = cli("chatflows", "list", url=sqlite_server.url).stdout
    assert new_id in listed and chatflow_id in listed
    assert json.loads(exported.stdout)["id"] == chatflow_id


def test_document_store_helpers(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    embedding = {"type": "openAIEmbeddings", "model": "sdk", "baseUrl": mock_llm.base_url}
    with Tailwinds(sqlite_server.url) as client:
        created = client.document_stores.create(
            "sdk docs", embedding, {"chunkSize": 200, "chunkOverlap": 0}
        )
        result = client.document_stores.upsert(
            created["id"],
            [
                {"pageContent": "Owls hunt at night.", "metadata": {"source": "owls"}},
                {"pageContent": "Bees make honey.", "metadata": {"source": "bees"}},
            ],
        )
        assert result["chunks"] == 2
        assert (
            client.document_stores.query(created["id"], "honey bees", top_k=1)[0]["metadata"][
                "source"
            ]
            == "bees"
        )
        assert client.document_stores.get(created["id"])["sources"] == {"bees": 1, "owls": 1}

    async def run() -> None:
        async with AsyncTailwinds(sqlite_server.url) as client:
            again = await client.document_stores.upsert(
                created["id"],
                [{"pageContent": "Owls hunt at night.", "metadata": {"source": "owls"}}],
            )
            assert again["embedded"] == 0
            assert any(s["id"] == created["id"] for s in await client.document_stores.list())
            await client.document_stores.delete(created["id"])

    asyncio.run(run())


def test_every_event_type_and_rate_limit(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    from tailwinds.client import RateLimitError

    with Tailwinds(sqlite_server.url) as client:
        embedding = {"type": "openAIEmbeddings", "model": "bow", "baseUrl": mock_llm.base_url}
        store = client.document_stores.create("ev", embedding)
        client.document_stores.upsert(
            store["id"], [{"pageContent": "Otters hold hands.", "metadata": {"source": "o"}}]
        )
        nodes = [
            {
                "id": "m",
                "type": "chatOpenAI",
                "inputs": {"model": "agent", "baseUrl": mock_llm.base_url},
            },
            {"id": "t", "type": "retrieverTool", "inputs": {"documentStoreId": store["id"]}},
            {"id": "a", "type": "toolAgent", "inputs": {}},
        ]
        edges = [
            {"source": "m", "target": "a", "targetInput": "model"},
            {"source": "t", "target": "a", "targetInput": "tools"},
        ]
        agent = client.chatflows.create(
            {
                "name": "ev",
                "flowData": {"nodes": nodes, "edges": edges},
                "rateLimit": {"requests": 1},
            }
        )
        question = "call:" + json.dumps([["search_documents", {"query": "otters"}]])
        with client.stream(agent["id"], question) as stream:
            kinds = [type(e).__name__ for e in stream]
        assert kinds[0] == "Start" and kinds[-2:] == ["Metadata", "End"]
        assert {"SourceDocuments", "UsedTools", "Token"} <= set(kinds)
        with pytest.raises(RateLimitError) as limited:
            client.predict(agent["id"], question)
        assert (
            limited.value.status == 429
            and limited.value.retry_after
            and limited.value.retry_after >= 1
        )


@pytest.fixture
def full_backlog() -> Iterator[str]:
    """A port whose accept queue is full: a new connection is never completed."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(address)
        fillers.append(s)
    yield f"http://127.0.0.1:{address[1]}"
    for s in fillers:
        s.close()
    listener.close()


def test_connect_timeout(full_backlog: str) -> None:
    started = time.monotonic()
    with (
        Tailwinds(full_backlog, timeout=Timeouts(connect_s=0.5)) as client,
        pytest.raises(StreamTimeout),
    ):
        client.predict("x", "y")
    assert time.monotonic() - started < 3


@pytest.fixture
def headers_only_server() -> Iterator[str]:
    """Answers with the headers of a stream, then nothing at all."""
    with mute_server(STREAM_HEAD) as url:
        yield url


def test_first_event_timeout(headers_only_server: str) -> None:
    timeouts = Timeouts(connect_s=2, first_event_s=0.5, idle_s=0.5)
    with (
        Tailwinds(headers_only_server, timeout=timeouts) as client,
        pytest.raises(StreamTimeout),
        client.stream("x", "y") as stream,
    ):
        list(stream)

    async def run() -> None:
        async with AsyncTailwinds(
            headers_only_server, timeout=Timeouts(first_event_s=0.5, idle_s=5)
        ) as client:
            with pytest.raises(StreamTimeout, match=r"no first event in 0\.5 s"):
                async with client.stream("x", "y") as stream:
                    async for _ in stream:
                        pass

    asyncio.run(run())


def test_chat_ctrl_c_aborts_the_answer(
    sqlite_server: RunningServer, mock_llm: MockOpenAI, tmp_path: Path
) -> None:

    require_command("tmux", "`apt-get install tmux` (scripts/install-test-deps)")
    slow = sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.1")
    session = f"tw{int(time.time() * 1000) % 10**8}"
    command = f"{sys.executable} -m tailwinds chat {slow} --url {sqlite_server.url}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "50", command], check=True
    )
    try:

        def screen() -> str:
            return subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout

        def wait_for(text: str) -> None:
            deadline = time.monotonic() + 15
            while text not in screen():
                assert time.monotonic() < deadline, f"waiting for {text!r}:\n{screen()}"
                time.sleep(0.1)

        wait_for("you>")
        tokens = [f"w{i} " for i in range(100)]
        subprocess.run(
            ["tmux", "send-keys", "-t", session, "tokens:" + json.dumps(tokens), "Enter"],
            check=True,
        )
        wait_for("w0 w1 w2 w3 ")  # tokens appear as they stream
        subprocess.run(["tmux", "send-keys", "-t", session, "C-c"], check=True)
        wait_for("[stopped]")
        wait_for("you>")  # still in the conversation
        subprocess.run(["tmux", "send-keys", "-t", session, "after the stop", "Enter"], check=True)
        wait_for("You said: after the stop")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    record = mock_llm.find("tokens:" + json.dumps(tokens))
    assert not record.completed
    chat_id = mock_llm.find(
        "after the stop"
    )  # same conversation: the aborted turn is in the history
    assert any("w0" in m["content"] for m in chat_id.body["messages"] if m["role"] == "assistant")


def test_the_client_resumes_a_dropped_stream_by_itself(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    paced = sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.02")
    tokens = [f"sdk{i} " for i in range(30)]
    proxy = CuttingProxy(int(sqlite_server.url.rsplit(":", 1)[1]), cut_after=5)
    try:
        with (
            Tailwinds(proxy.url) as client,
            client.stream(paced, "tokens:" + json.dumps(tokens)) as stream,
        ):
            seen = [event.text for event in stream if isinstance(event, Token)]
        assert proxy.connections == 2, "the stream broke once and was resumed once"
        assert seen == tokens, "every token once, in order, across the break"
        assert stream.metadata is not None
    finally:
        proxy.close()


def test_the_async_client_resumes_too(sqlite_server: RunningServer, mock_llm: MockOpenAI) -> None:
    paced = sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.02")
    tokens = [f"async{i} " for i in range(30)]
    proxy = CuttingProxy(int(sqlite_server.url.rsplit(":", 1)[1]), cut_after=5)

    async def run() -> str:
        async with (
            AsyncTailwinds(proxy.url) as client,
            client.stream(paced, "tokens:" + json.dumps(tokens)) as stream,
        ):
            return await stream.text()

    try:
        assert asyncio.run(run()) == "".join(tokens)
        assert proxy.connections == 2
    finally:
        proxy.close()


def test_without_a_grace_a_dropped_stream_is_an_error(
    sqlite_server: RunningServer, mock_llm: MockOpenAI
) -> None:
    paced = sqlite_server.model_chatflow(mock_llm.base_url, model="paced:0.02")
    proxy = CuttingProxy(int(sqlite_server.url.rsplit(":", 1)[1]), cut_after=3)
    try:
        question = 'tokens:["a","b","c","d","e","f"]'
        with (
            Tailwinds(proxy.url) as client,
            pytest.raises(TailwindsClientError) as broke,
            client.stream(paced, question, resume_grace_s=0) as stream,
        ):
            stream.text()
        assert "the stream broke" in str(broke.value)
        assert proxy.connections == 1
    finally:
        proxy.close()
