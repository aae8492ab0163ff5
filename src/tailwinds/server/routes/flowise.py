"""The routes Flowise's clients call (`flowise-embed`, `flowise-sdk`, the PyPI `flowise`),
public like Flowise's and under the chatflow's CORS origins (server/cors.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from tailwinds.dialects.choice import FLOWISE, TAILWINDS, requested_dialect
from tailwinds.errors import ChatflowNotFound
from tailwinds.runs.chatflow_access import CHATFLOW_MAX_AGE_S
from tailwinds.runs.uploads import (
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_FILES,
    IMAGE_TYPES,
)
from tailwinds.server.direct_routes import direct
from tailwinds.server.flowise_predictions import flowise_prediction
from tailwinds.server.routes.predictions import own_prediction
from tailwinds.server.state import AppState, State
from tailwinds.store.chatflows import Chatflow

router = APIRouter(prefix="/api/v1", tags=["flowise"])


@router.post("/prediction/{chatflow_id}")
@direct
async def predict(chatflow_id: str, request: Request, state: State) -> Response:
    """Flowise's prediction route: the body as Flowise's clients send it, the answer in
    Flowise's dialect (frames `{"event", "data"}`, docs/PROTOCOL.md); `?dialect=tailwinds`
    answers as `/predictions/{id}` does."""
    dialect = requested_dialect(
        request.query_params.get("dialect"), request.headers.get("accept"), FLOWISE
    )
    if dialect == TAILWINDS:
        return await own_prediction(chatflow_id, request, state)
    return await flowise_prediction(chatflow_id, request, state)


@router.get("/chatflows-streaming/{chatflow_id}")
async def chatflow_streaming(chatflow_id: str, state: State) -> dict[str, bool]:
    """`{"isStreaming": true}`: every chatflow streams. Public, as Flowise's: its clients
    ask it without their API key before predicting."""
    await _chatflow(state, chatflow_id)
    return {"isStreaming": True}


@router.get("/public-chatbotConfig/{chatflow_id}")
async def public_chatbot_config(chatflow_id: str, state: State) -> Any:
    """The chatflow's chat widget settings in Flowise's shape (starter prompts as
    `{"0": {"prompt": …}}`), or `"OK"` when it has none. Public, as Flowise's."""
    config = (await _chatflow(state, chatflow_id)).chatbot_config
    if not config:
        return "OK"
    shaped = flowise_chatbot_config(config)
    if config.get("uploads"):
        shaped["uploads"] = widget_uploads(config["uploads"], state.settings.max_body_bytes)
    return shaped


def widget_uploads(limits: dict[str, Any], max_body_bytes: int) -> dict[str, Any]:
    """The widget's image button (`Bot.tsx`, `uploadsConfig`): shown when the chatflow's
    upload limits take images; sizes in MB, as the widget compares them. Other files go
    through Flowise's attachments route, which Tailwinds has not: no file button."""
    images = [t for t in limits.get("allowedTypes", IMAGE_TYPES) if t in IMAGE_TYPES]
    size = min(limits.get("maxFileBytes", DEFAULT_MAX_FILE_BYTES), max_body_bytes)
    allowed = bool(images) and limits.get("maxFiles", DEFAULT_MAX_FILES) > 0
    return {
        "isImageUploadAllowed": allowed,
        "imgUploadSizeAndTypes": [{"fileTypes": images, "maxUploadSize": size / 2**20}]
        if allowed
        else [],
        "isSpeechToTextEnabled": False,
        "isRAGFileUploadAllowed": False,
        "fileUploadSizeAndTypes": [],
    }


def flowise_chatbot_config(config: dict[str, Any]) -> dict[str, Any]:
    """Our stored settings in the shape the widget reads (`Bot.tsx`): starter prompts as
    an object `{"0": {"prompt": …}}` (an array shows empty bubbles), switches as
    `{"status": bool}`."""
    shaped: dict[str, Any] = {
        "starterPrompts": {
            str(i): {"prompt": prompt} for i, prompt in enumerate(config.get("starterPrompts", []))
        },
        "chatFeedback": {"status": bool(config.get("chatFeedback"))},
        "followUpPrompts": {"status": bool(config.get("followUpPrompts"))},
    }
    for name in ("title", "welcomeMessage"):
        if config.get(name):
            shaped[name] = config[name]
    return shaped


async def _chatflow(state: AppState, chatflow_id: str) -> Chatflow:
    chatflow = await state.chatflows.get(chatflow_id, max_age_s=CHATFLOW_MAX_AGE_S)
    if chatflow is None:
        raise ChatflowNotFound(chatflow_id)
    return chatflow
