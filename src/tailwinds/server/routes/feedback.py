"""Feedback on answers, on Flowise's routes (what `flowise-embed`'s thumbs send): public
under the chatflow's key and CORS origins like its predictions; listed for admins."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from tailwinds.errors import InvalidRequest, NotFound
from tailwinds.server.auth import require_admin
from tailwinds.server.state import AppState, State
from tailwinds.store.feedback import FeedbackRepository, Rating

router = APIRouter(prefix="/api/v1/feedback", tags=["feedback"])

MAX_COMMENT = 4000


class NewFeedback(BaseModel):
    """Flowise's body: `{chatflowid, chatId, messageId, rating, content}`."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    chatflowid: str | None = None
    chat_id: str = Field(alias="chatId", min_length=1, max_length=255)
    message_id: str = Field(alias="messageId", min_length=1, max_length=36)
    rating: Rating
    content: str | None = Field(None, max_length=MAX_COMMENT)


class FeedbackChange(BaseModel):
    model_config = ConfigDict(extra="ignore")

    rating: Rating | None = None
    content: str | None = Field(None, max_length=MAX_COMMENT)


# one path parameter name for the three: a chatflow's id (POST, GET) or a feedback's (PUT),
# as Flowise's routes have it; one resource in the OpenAPI schema


@router.post("/{id}")
async def add_feedback(
    id: str, body: NewFeedback, request: Request, state: State
) -> dict[str, Any]:
    """Rate an answer of a chat of the chatflow `id`; the answer carries the feedback's
    `id`, for a `PUT` of the comment."""
    chatflow_id = id
    await state.predictions.authorize(chatflow_id, request.headers.get("authorization"))
    if body.chatflowid not in (None, chatflow_id):
        raise InvalidRequest("is not the chatflow of the route", field="chatflowid")
    repo = FeedbackRepository(state.db)
    if not await repo.answer_exists(chatflow_id, body.chat_id, body.message_id):
        raise NotFound(f"no answer {body.message_id} in chat {body.chat_id} of this chatflow")
    feedback = await repo.rate(
        chatflow_id, body.chat_id, body.message_id, body.rating, body.content or None
    )
    return feedback.as_json()


@router.put("/{id}")
async def change_feedback(
    id: str, body: FeedbackChange, request: Request, state: State
) -> dict[str, Any]:
    """Change the rating or the comment of the feedback `id` (the widget sends the
    comment this way)."""
    feedback_id = id
    repo = FeedbackRepository(state.db)
    feedback = await repo.get(feedback_id)
    if feedback is None:
        raise NotFound(f"no feedback {feedback_id}")
    await state.predictions.authorize(feedback.chatflow_id, request.headers.get("authorization"))
    changed = await repo.update(feedback_id, body.rating, body.content)
    if changed is None:
        raise NotFound(f"no feedback {feedback_id}")
    return changed.as_json()


@router.get("/{id}", dependencies=[Depends(require_admin)])
async def list_feedback(id: str, state: State, chatId: str | None = None) -> list[dict[str, Any]]:
    """The feedback of the chatflow `id` (of one chat with `chatId`), oldest first."""
    return [f.as_json() for f in await FeedbackRepository(state.db).list(id, chatId)]


async def feedback_chatflow(state: AppState, feedback_id: str) -> str | None:
    """The chatflow a feedback id belongs to (for CORS on `PUT /feedback/{id}`)."""
    feedback = await FeedbackRepository(state.db).get(feedback_id)
    return feedback.chatflow_id if feedback is not None else None


async def with_feedback(
    state: AppState, chatflow_id: str, chat_id: str, messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Stored messages, each answer rated carrying `feedback` `{id, rating, content}`."""
    rated = {f.message_id: f for f in await FeedbackRepository(state.db).list(chatflow_id, chat_id)}
    for message in messages:
        feedback = rated.get(message["id"])
        if feedback is not None:
            message["feedback"] = {
                "id": feedback.id,
                "rating": feedback.rating,
                "content": feedback.content,
            }
    return messages
