"""The history every provider is given: no empty message, roles alternating, an answer
last; checked on each provider's own request format."""

from __future__ import annotations

import itertools

import orjson
import pytest

from tailwinds.engine.history import well_formed_history
from tailwinds.messages import ChatMessage
from tailwinds.nodes.models import build_messages
from tailwinds.providers import anthropic_messages, ollama_native, openai_chat
from tailwinds.providers.base import ChatRequest
from tailwinds.providers.local_catalog import completion_prompt

U, A = "user", "assistant"


def m(role: str, content: str) -> ChatMessage:
    return ChatMessage(role, content)  # type: ignore[arg-type]


def test_a_well_formed_history_is_kept_as_it_is() -> None:
    history = [m(U, "q1"), m(A, "a1"), m(U, "q2"), m(A, "a2")]
    assert well_formed_history(history) == history


def test_empty_answers_are_left_out_and_their_neighbours_merged() -> None:
    # a question whose answer was empty, then the same question asked again
    history = [m(U, "q1"), m(A, ""), m(U, "q1 again"), m(A, "a1"), m(U, "q2"), m(A, " \n")]
    assert well_formed_history(history) == [m(U, "q1\n\nq1 again"), m(A, "a1")]


def test_a_last_question_without_an_answer_is_left_out() -> None:
    assert well_formed_history([m(U, "q1"), m(A, "a1"), m(U, "q2")]) == [m(U, "q1"), m(A, "a1")]
    assert well_formed_history([m(U, "only a question")]) == []


def test_empty_questions_and_other_roles_are_left_out() -> None:
    history = [m(A, "hello, how can I help?"), m(U, ""), m("system", "s"), m(U, "q"), m(A, "a")]
    assert well_formed_history(history) == [m(A, "hello, how can I help?"), m(U, "q"), m(A, "a")]


def test_two_answers_in_a_row_become_one() -> None:
    assert well_formed_history([m(U, "q"), m(A, "a"), m(A, "b")]) == [m(U, "q"), m(A, "a\n\nb")]


# a history as bad as a client may send it, or as memory held it before: every rule broken
BROKEN = [
    m(U, "q1"),
    m(A, ""),
    m(U, "q2"),
    m(U, "q2 again"),
    m(A, "a2"),
    m(A, ""),
    m(U, "   "),
    m(A, "a2 continued"),
    m(U, "q3 (failed)"),
]


def conversation(system: str | None = "be brief") -> list[ChatMessage]:
    return build_messages(system, well_formed_history(BROKEN), "q4")


def assert_alternating(roles: list[str]) -> None:
    assert roles[0] == "user" and roles[-1] == "user"
    assert all(a != b for a, b in itertools.pairwise(roles)), roles


def test_openai_compatible_request_is_well_formed() -> None:
    body = orjson.loads(openai_chat._body(ChatRequest("m", conversation()), with_usage=True))
    messages = body["messages"]
    assert messages[0] == {"role": "system", "content": "be brief"}
    assert all(x["content"].strip() for x in messages)
    assert_alternating([x["role"] for x in messages[1:]])
    assert messages[-1] == {"role": "user", "content": "q4"}


def test_anthropic_request_is_well_formed() -> None:
    body = orjson.loads(anthropic_messages._body(ChatRequest("m", conversation())))
    messages = body["messages"]
    assert body["system"] == "be brief"
    for x in messages:
        content = x["content"]
        texts = [content] if isinstance(content, str) else [b.get("text", "") for b in content]
        assert all(t.strip() for t in texts), x
    assert_alternating([x["role"] for x in messages])
    assert [x["content"] for x in messages] == ["q1\n\nq2\n\nq2 again", "a2\n\na2 continued", "q4"]


def test_ollama_request_is_well_formed() -> None:
    # the provider sends each message as `_message` writes it (Ollama's /api/chat)
    messages = [ollama_native._message(x) for x in conversation(None)]
    assert all(x["content"].strip() for x in messages)
    assert_alternating([x["role"] for x in messages])


def test_local_model_prompt_has_no_empty_turn() -> None:
    prompt = completion_prompt(conversation())
    turns = prompt.removesuffix("\nAssistant:").splitlines()
    lines = [line for line in turns if line.startswith(("User:", "Assistant:"))]
    assert all(line.split(":", 1)[1].strip() for line in lines), prompt
    assert prompt.endswith("User: q4\nAssistant:")


@pytest.mark.parametrize("window", [1, 2, 3])
def test_a_memory_window_of_a_well_formed_history_starts_with_a_question(window: int) -> None:
    history = well_formed_history(
        [m(U, f"q{i // 2}") if i % 2 == 0 else m(A, f"a{i // 2}") for i in range(10)]
    )
    kept = history[-2 * window :]
    assert kept[0].role == "user" and len(kept) == 2 * window
