"""Where follow-up prompts join a run: around its events, when the chatflow's chat widget
settings turn them on and its flow has a chat model to ask."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tailwinds.engine.events import Event
from tailwinds.engine.follow_ups import chat_model, with_follow_ups
from tailwinds.runs.admission import PreparedRun
from tailwinds.store.feedback import FeedbackRepository


def follow_ups_of(
    run: AsyncIterator[Event], prepared: PreparedRun, store: FeedbackRepository
) -> AsyncIterator[Event]:
    config = prepared.chatflow.chatbot_config or {}
    model = chat_model(prepared.flow.answer) if config.get("followUpPrompts") else None
    if model is None:
        return run
    return with_follow_ups(run, model, prepared.ctx, store.store_follow_ups)
