"""OpenTelemetry traces (issue 23), through the real OTLP/HTTP exporter to a receiver in
the test: one trace per streamed tool-agent prediction with retrieval, its spans' names,
parents and GenAI attributes, in local mode and across an API node and a worker (queue
mode); content only when opted in; a receiver that is down changes nothing."""

# ruff: noqa: E402
from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.requirements import require_module

# the OpenTelemetry imports below need the `dev` extra: skipped (failed under CI) without
require_module("opentelemetry.sdk", "pip install -e '.[dev]' (the `tracing` extra)")

from tests.conftest import RunningServer, free_port, start_server, start_worker
from tests.integration.test_queue_mode import queue_env
from tests.mock_openai import MockOpenAI
from tests.otlp_receiver import Receiver, Span
from tests.sse_frames import check_order, parse_frames, tokens_of

QUESTION = "call:" + json.dumps(
    [["search_documents", {"query": "what pulls the tides"}], ["calculator", {"expression": "2+3"}]]
)
CORPUS = [
    ("tides.md", "The tides are caused by the gravity of the moon and the sun."),
    ("bread.md", "To bake bread, mix flour, water, yeast and salt, then bake."),
]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def tracing_env(endpoint: str, service: str, **extra: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": service,
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # ms: export soon after each span ends
        **extra,
    }


def agent_chatflow(server: RunningServer, mock_llm: MockOpenAI) -> tuple[str, str]:
    """A tool agent with a document store search and a calculator; (chatflow id, store id)."""
    store_id = server.create_document_store(mock_llm.base_url, "facts", "bow")
    response = requests.post(
        f"{server.url}/api/v1/document-stores/{store_id}/upsert",
        json={"documents": [{"pageContent": t, "metadata": {"source": s}} for s, t in CORPUS]},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    flow = {
        "nodes": [
            {
                "id": "m",
                "type": "chatOpenAI",
                "inputs": {"model": "agent", "baseUrl": mock_llm.base_url, "temperature": 0.2},
            },
            {"id": "a", "type": "toolAgent", "inputs": {}},
            {"id": "docs", "type": "retrieverTool", "inputs": {"documentStoreId": store_id}},
            {"id": "calc", "type": "calculator", "inputs": {}},
        ],
        "edges": [
            {"source": "m", "target": "a", "targetInput": "model"},
            {"source": "docs", "target": "a", "targetInput": "tools"},
            {"source": "calc", "target": "a", "targetInput": "tools"},
        ],
    }
    return server.create_chatflow(flow)["id"], store_id


def predict(
    server: RunningServer, chatflow_id: str, question: str, trace_id: str, parent_id: str
) -> list[tuple[str, Any]]:
    response = requests.post(
        f"{server.url}/api/v1/predictions/{chatflow_id}",
        json={"question": question, "streaming": True},
        headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    frames = parse_frames(response.content)
    check_order(frames)
    return frames


def one(spans: list[Span], name: str) -> Span:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def check_agent_trace(
    receiver: Receiver,
    frames: list[tuple[str, Any]],
    chatflow_id: str,
    store_id: str,
    trace_id: str,
    client_span: str,
) -> dict[str, Span]:
    workflow = f"invoke_workflow {chatflow_id}"
    names = [
        "POST /api/v1/predictions/{chatflow_id}",
        workflow,
        "chat agent",
        "chat agent",
        "execute_tool search_documents",
        "execute_tool calculator",
        f"retrieval {store_id}",
    ]
    spans = receiver.wait_for(trace_id, names)
    http = one(spans, names[0])
    run = one(spans, workflow)
    search = one(spans, "execute_tool search_documents")
    calc = one(spans, "execute_tool calculator")
    retrieval = one(spans, f"retrieval {store_id}")
    chats = [s for s in spans if s.name == "chat agent"]

    # parentage: client → HTTP request → run → model calls and tools → the tool's search
    assert http.kind == 2 and http.parent_id == client_span
    assert run.parent_id == http.span_id
    assert {c.parent_id for c in chats} == {run.span_id}
    assert search.parent_id == run.span_id and calc.parent_id == run.span_id
    assert retrieval.parent_id == search.span_id

    assert http.attributes["http.route"] == "/api/v1/predictions/{chatflow_id}"
    assert http.attributes["http.request.method"] == "POST"
    assert http.attributes["http.response.status_code"] == 200

    metadata = next(data for name, data in frames if name == "metadata")
    tokens = [data for name, data in frames if name == "token"]
    a = run.attributes
    assert a["gen_ai.operation.name"] == "invoke_workflow"
    assert a["tailwinds.chatflow.id"] == chatflow_id
    assert a["tailwinds.chat.id"] == metadata["chatId"]
    assert a["tailwinds.message.id"] == metadata["messageId"]
    assert a["gen_ai.conversation.id"] == metadata["sessionId"]
    assert a["tailwinds.dialect"] == "tailwinds"
    assert a["tailwinds.prediction.status"] == "complete"
    assert a["tailwinds.prediction.tokens_streamed"] == len(tokens)
    assert a["tailwinds.prediction.time_to_first_token"] > 0
    # the mock reports 10 prompt and 5 completion tokens per call: two calls
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (20, 10)
    assert run.status == 0

    for chat in chats:
        c = chat.attributes
        assert chat.kind == 3
        assert c["gen_ai.operation.name"] == "chat"
        assert c["gen_ai.provider.name"] == "openai"
        assert c["gen_ai.request.model"] == "agent"
        assert c["gen_ai.request.temperature"] == 0.2
        assert c["server.address"] == "127.0.0.1"
        assert (c["gen_ai.usage.input_tokens"], c["gen_ai.usage.output_tokens"]) == (10, 5)
        assert c["gen_ai.response.time_to_first_chunk"] > 0
    first, second = sorted(chats, key=lambda s: s.start_ns)
    assert first.attributes["tailwinds.response.tool_calls"] == 2
    assert first.attributes["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert second.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert first.attributes["gen_ai.response.model"] == "agent"
    assert first.attributes["gen_ai.response.id"].startswith("chatcmpl-agent")
    assert "tailwinds.response.tool_calls" not in second.attributes
    assert first.end_ns <= search.start_ns and search.end_ns <= second.start_ns

    assert search.attributes["gen_ai.operation.name"] == "execute_tool"
    assert search.attributes["gen_ai.tool.call.id"].startswith("call_0_")
    assert calc.attributes["gen_ai.tool.name"] == "calculator"
    assert search.status == calc.status == 0
    r = retrieval.attributes
    assert r["gen_ai.operation.name"] == "retrieval"
    assert r["gen_ai.data_source.id"] == store_id
    assert r["gen_ai.request.top_k"] == 4.0
    assert r["tailwinds.retrieval.hits"] == 2

    # no prompt, completion, tool argument or query text without the opt-in
    for span in spans:
        assert not any(k.startswith(("gen_ai.input", "gen_ai.output")) for k in span.attributes)
        assert "what pulls the tides" not in json.dumps(span.attributes)
        assert "gravity" not in json.dumps(span.attributes)
    return {"http": http, "run": run}


def test_a_tool_agent_prediction_is_one_trace(
    receiver: Receiver, mock_llm: MockOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("traced")
    env = tracing_env(receiver.endpoint, "tw-local", TAILWINDS_LOG_FORMAT="json")
    server = start_server(home, f"sqlite+aiosqlite:///{home / 'tailwinds.db'}", **env)
    try:
        chatflow_id, store_id = agent_chatflow(server, mock_llm)
        trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
        frames = predict(server, chatflow_id, QUESTION, trace_id, client_span)
        assert "5" in tokens_of(frames)
        check_agent_trace(receiver, frames, chatflow_id, store_id, trace_id, client_span)
        assert {s.service for s in receiver.trace(trace_id)} == {"tw-local"}
        # JSON log lines of the run carry its trace
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        run_line = next(line for line in lines if line["message"].startswith("run "))
        assert run_line["traceId"] == trace_id and len(run_line["spanId"]) == 16

        # an upsert in the background: its job's span is a child of the request's
        trace_id = secrets.token_hex(16)
        response = requests.post(
            f"{server.url}/api/v1/document-stores/{store_id}/upsert",
            params={"background": "true"},
            json={"documents": [{"pageContent": "Tulips flower in spring.", "metadata": {}}]},
            headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
            timeout=20,
        )
        assert response.status_code == 202, response.text
        spans = receiver.wait_for(trace_id, [f"ingest {store_id}"])
        ingest = one(spans, f"ingest {store_id}")
        (request_span,) = [s for s in spans if s.kind == 2]
        assert ingest.parent_id == request_span.span_id
        assert ingest.attributes["tailwinds.ingest.job.id"] == response.json()["jobId"]
        assert ingest.attributes["tailwinds.ingest.chunks"] == 1
    finally:
        server.stop()


def test_content_only_when_opted_in(
    receiver: Receiver, mock_llm: MockOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("content")
    env = tracing_env(receiver.endpoint, "tw-content", TAILWINDS_TRACE_CONTENT="true")
    server = start_server(home, f"sqlite+aiosqlite:///{home / 'tailwinds.db'}", **env)
    try:
        chatflow_id = server.model_chatflow(mock_llm.base_url, systemMessage="Be brief.")
        trace_id = secrets.token_hex(16)
        predict(server, chatflow_id, "hello there", trace_id, secrets.token_hex(8))
        spans = receiver.wait_for(trace_id, ["chat echo"])
        chat = one(spans, "chat echo").attributes
        assert json.loads(chat["gen_ai.system_instructions"]) == [
            {"type": "text", "content": "Be brief."}
        ]
        messages = json.loads(chat["gen_ai.input.messages"])
        assert messages[-1] == {
            "role": "user",
            "parts": [{"type": "text", "content": "hello there"}],
        }
        output = json.loads(chat["gen_ai.output.messages"])
        assert output[0]["role"] == "assistant"
        assert output[0]["parts"][0]["content"] == "You said: hello there"
        assert output[0]["finish_reason"] == "stop"
    finally:
        server.stop()


def test_a_receiver_that_is_down_changes_nothing(
    mock_llm: MockOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("down")
    env = tracing_env(f"http://127.0.0.1:{free_port()}", "tw-down")
    server = start_server(home, f"sqlite+aiosqlite:///{home / 'tailwinds.db'}", **env)
    try:
        chatflow_id = server.model_chatflow(mock_llm.base_url)
        for i in range(3):
            frames = predict(server, chatflow_id, f"ping {i}", secrets.token_hex(16), "ab" * 8)
            assert tokens_of(frames) == f"You said: ping {i}"
            assert frames[-2][0] == "metadata"
        assert requests.get(f"{server.url}/api/v1/health", timeout=5).status_code == 200
    finally:
        server.stop()


def test_queue_mode_one_trace_across_api_node_and_worker(
    receiver: Receiver,
    mock_llm: MockOpenAI,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    redis_url: str,
) -> None:
    home = tmp_path_factory.mktemp("traced-queue")
    env = queue_env(redis_url)
    api = start_server(
        home, postgres_url, "api.log", **env, **tracing_env(receiver.endpoint, "tw-api")
    )
    worker = None
    try:
        worker = start_worker(
            home, postgres_url, **env, **tracing_env(receiver.endpoint, "tw-worker")
        )
        chatflow_id, store_id = agent_chatflow(api, mock_llm)
        trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
        frames = predict(api, chatflow_id, QUESTION, trace_id, client_span)
        found = check_agent_trace(receiver, frames, chatflow_id, store_id, trace_id, client_span)
        assert found["http"].service == "tw-api"
        assert {s.service for s in receiver.trace(trace_id) if s is not found["http"]} == {
            "tw-worker"
        }
    finally:
        if worker is not None:
            worker.stop()
        api.stop()


def test_errors_and_a_chatflow_tool_run(
    receiver: Receiver, mock_llm: MockOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("errors")
    env = tracing_env(receiver.endpoint, "tw-errors")
    server = start_server(home, f"sqlite+aiosqlite:///{home / 'tailwinds.db'}", **env)
    try:
        # a model server that is not there: the model call and the run fail, with status
        dead = server.model_chatflow(f"http://127.0.0.1:{free_port()}/v1")
        trace_id = secrets.token_hex(16)
        frames = predict(server, dead, "hello", trace_id, secrets.token_hex(8))
        assert frames[-2][0] == "error"
        spans = receiver.wait_for(trace_id, [f"invoke_workflow {dead}", "chat echo"])
        for span in (one(spans, f"invoke_workflow {dead}"), one(spans, "chat echo")):
            assert span.status == 2
            assert span.attributes["error.type"] == frames[-2][1]["code"]
        assert one(spans, f"invoke_workflow {dead}").attributes["tailwinds.prediction.status"] == (
            "error"
        )

        # a failing tool is an error span, its run still complete; a chatflowTool's run
        # nests under its tool call
        echo = server.model_chatflow(mock_llm.base_url)
        flow = {
            "nodes": [
                {
                    "id": "m",
                    "type": "chatOpenAI",
                    "inputs": {"model": "agent", "baseUrl": mock_llm.base_url},
                },
                {"id": "a", "type": "toolAgent", "inputs": {}},
                {"id": "calc", "type": "calculator", "inputs": {}},
                {
                    "id": "sub",
                    "type": "chatflowTool",
                    "inputs": {"chatflowId": echo, "name": "ask_echo"},
                },
            ],
            "edges": [
                {"source": "m", "target": "a", "targetInput": "model"},
                {"source": "calc", "target": "a", "targetInput": "tools"},
                {"source": "sub", "target": "a", "targetInput": "tools"},
            ],
        }
        agent = server.create_chatflow(flow)["id"]
        question = "call:" + json.dumps(
            [["calculator", {"expression": "1/0"}], ["ask_echo", {"question": "hi"}]]
        )
        trace_id = secrets.token_hex(16)
        predict(server, agent, question, trace_id, secrets.token_hex(8))
        names = [
            f"invoke_workflow {agent}",
            "execute_tool calculator",
            "execute_tool ask_echo",
            f"invoke_workflow {echo}",
            "chat echo",
        ]
        spans = receiver.wait_for(trace_id, names)
        run = one(spans, f"invoke_workflow {agent}")
        calc = one(spans, "execute_tool calculator")
        ask = one(spans, "execute_tool ask_echo")
        sub_run = one(spans, f"invoke_workflow {echo}")
        assert run.status == 0 and run.attributes["tailwinds.prediction.status"] == "complete"
        assert calc.status == 2 and calc.attributes["error.type"] == "tool_error"
        assert ask.status == 0
        assert sub_run.parent_id == ask.span_id
        assert one(spans, "chat echo").parent_id == sub_run.span_id
    finally:
        server.stop()
