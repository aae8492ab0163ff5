"""Follow-up prompts: three questions the user may ask next, asked of the chatflow's own
model once the answer is whole, for chatflows whose chat widget settings turn them on
(`chatbotConfig.followUpPrompts`, Flowise's feature of the same name). They go out in
`metadata` as `followUpPrompts`, a JSON string of a list (Flowise's widget `JSON.parse`s
it), and are stored with the answer."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import orjson

from tailwinds.engine.context import RunContext
from tailwinds.engine.events import Event, MetadataEvent, TokenEvent
from tailwinds.messages import ChatMessage

logger = logging.getLogger("tailwinds.follow_ups")

COUNT = 3
MAX_PROMPT_CHARS = 300
# what of the answer the model sees: the end of a long one matters less than its start
MAX_ANSWER_CHARS = 4000

INSTRUCTION = (
    "Suggest exactly 3 short follow-up questions the user could ask next about this "
    "conversation. Reply with a JSON array of 3 strings and nothing else."
)

Store = Callable[[str, list[str]], Awaitable[None]]


def chat_model(answer: Any) -> Any | None:
    """The flow's chat model: the answering node itself, or the model it is fed by."""
    if hasattr(answer, "stream_chat"):
        return answer
    model = getattr(answer, "links", {}).get("model")
    return model if hasattr(model, "stream_chat") else None


async def with_follow_ups(
    events: AsyncIterator[Event], model: Any, ctx: RunContext, store: Store
) -> AsyncIterator[Event]:
    """`events`, their `metadata` carrying the follow-up prompts (none when the model
    fails or says nothing usable: the answer never fails for them)."""
    parts: list[str] = []
    try:
        async for event in events:
            if type(event) is TokenEvent:
                parts.append(event.text)
            elif type(event) is MetadataEvent:
                prompts = await suggest(model, ctx, ctx.turn.question, "".join(parts))
                if prompts:
                    await store(ctx.turn.message_id, prompts)
                    event = MetadataEvent({**event.data, "followUpPrompts": dump(prompts)})
            yield event
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def dump(prompts: list[str]) -> str:
    return orjson.dumps(prompts).decode()


async def suggest(model: Any, ctx: RunContext, question: str, answer: str) -> list[str]:
    messages = [
        ChatMessage("system", INSTRUCTION),
        ChatMessage("user", f"Question: {question}\nAnswer: {answer[:MAX_ANSWER_CHARS]}"),
    ]
    # the question's uploads were for its answer: not sent again
    plain = RunContext(replace(ctx.turn, uploads=[]), ctx.resources, state=ctx.state)
    try:
        chunks = [c async for c in model.stream_chat(plain, messages) if isinstance(c, str)]
    except Exception as exc:  # a suggestion is a nicety: the answer stands without it
        logger.info("no follow-up prompts for %s: %s", ctx.turn.message_id, exc)
        return []
    return parse_prompts("".join(chunks))


_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


def parse_prompts(text: str) -> list[str]:
    """Up to 3 prompts from the model's reply: its JSON array, else its non-empty lines
    (a model that numbered them instead)."""
    items: list[Any] = []
    start, end = text.find("["), text.rfind("]")
    if 0 <= start < end:
        try:
            parsed = orjson.loads(text[start : end + 1])
            items = parsed if isinstance(parsed, list) else []
        except orjson.JSONDecodeError:
            items = []
    if not items:
        items = [_BULLET.sub("", line) for line in text.splitlines()]
    prompts = [str(item).strip()[:MAX_PROMPT_CHARS] for item in items if isinstance(item, str)]
    return [p for p in prompts if p][:COUNT]
