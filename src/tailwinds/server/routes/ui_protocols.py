"""The chatflow for front-end frameworks, in their own protocols: AG-UI
(`POST /api/v1/agui/{chatflowId}`, `@ag-ui/client`, CopilotKit) and the Vercel AI SDK's UI
message stream (`POST /api/v1/ai-sdk/{chatflowId}`, `useChat`, and its reconnect
`GET /api/v1/ai-sdk/{chatflowId}/{chatId}/stream`). Both are public routes
of the chatflow, as its predictions are: its API key, rate limits and CORS origins apply.
Refusals before the stream are the Prediction API's `{"error", "code"}` answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from tailwinds.dialects import agui, ai_sdk, transcode
from tailwinds.errors import ChatflowNotFound
from tailwinds.runs.chatflow_access import CHATFLOW_MAX_AGE_S
from tailwinds.server import dialect_runs
from tailwinds.server.direct_routes import direct
from tailwinds.server.state import State
from tailwinds.server.streaming import SSEResponse

router = APIRouter(prefix="/api/v1", tags=["predictions"])


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_STREAM: dict[int | str, dict[str, Any]] = {
    200: {"description": "The stream", "content": {"text/event-stream": {}}}
}


async def _allowed_overrides(state: State, chatflow_id: str) -> list[str]:
    chatflow = await state.chatflows.get(chatflow_id, max_age_s=CHATFLOW_MAX_AGE_S)
    if chatflow is None:
        raise ChatflowNotFound(chatflow_id)
    return chatflow.allowed_overrides


@router.post("/agui/{chatflow_id}", openapi_extra=_body_doc(agui.RunAgentInput), responses=_STREAM)
@direct
async def agui_run(chatflow_id: str, request: Request, state: State) -> Response:
    """Run the chatflow on an AG-UI `RunAgentInput`; the answer streams as AG-UI events
    (RUN_STARTED, TEXT_MESSAGE_*, TOOL_CALL_*, CUSTOM sourceDocuments, RUN_FINISHED or
    RUN_ERROR). See docs/PROTOCOL.md, "AG-UI"."""
    run = agui.parse_run_input(await request.body())
    prediction = agui.to_prediction(run, await _allowed_overrides(state, chatflow_id))
    admission = await dialect_runs.admitted(request, state, chatflow_id, prediction)
    if admission is None:
        return dialect_runs.gone()
    encoder = agui.EventEncoder(run.thread_id, run.run_id)
    return await dialect_runs.stream_response(state, admission, encoder)


@router.post(
    "/ai-sdk/{chatflow_id}", openapi_extra=_body_doc(ai_sdk.ChatRequest), responses=_STREAM
)
@direct
async def ai_sdk_chat(chatflow_id: str, request: Request, state: State) -> Response:
    """Run the chatflow on the body `useChat` posts; the answer streams as the AI SDK's UI
    message stream (start, text-*, tool-*, source-document, finish, `[DONE]`). See
    docs/PROTOCOL.md, "Vercel AI SDK UI message stream"."""
    chat = ai_sdk.parse_chat_request(await request.body())
    overrides = await _allowed_overrides(state, chatflow_id)
    prediction = ai_sdk.to_prediction(chat, overrides, state.settings.ai_sdk_resume_grace_s)
    admission = await dialect_runs.admitted(request, state, chatflow_id, prediction)
    if admission is None:
        return dialect_runs.gone()
    encoder = ai_sdk.ChunkEncoder()
    return await dialect_runs.stream_response(state, admission, encoder, ai_sdk.HEADERS)


@router.get(
    "/ai-sdk/{chatflow_id}/{chat_id}/stream",
    responses={**_STREAM, 204: {"description": "No answer of this chat is running"}},
)
async def ai_sdk_reconnect(
    chatflow_id: str, chat_id: str, request: Request, state: State
) -> Response:
    """The chat's running answer again from its start, as the UI message stream: what
    `useChat({resume: true})` (`DefaultChatTransport.reconnectToStream`) asks for after a
    reload or a lost connection. 204 when the chat has no answer running. Needs the same
    key as the POST. See docs/PROTOCOL.md, "Vercel AI SDK UI message stream"."""
    frames = await state.predictions.chat_stream(
        chatflow_id, chat_id, request.headers.get("authorization")
    )
    if frames is None:
        return Response(status_code=204)
    settings = state.settings
    return SSEResponse(
        transcode(frames, ai_sdk.ChunkEncoder()),
        settings.keepalive_s,
        settings.client_write_timeout_s(),
        headers=ai_sdk.HEADERS,
    )
