"""On an empty database, make a chatflow that answers at once, and say how to call it."""

from __future__ import annotations

import logging
import shlex

import orjson

from tailwinds.config import Settings
from tailwinds.providers.llama_cpp import INSTALL_HINT, local_model_available
from tailwinds.providers.local_catalog import DEFAULT_LOCAL_MODEL
from tailwinds.store.chatflows import ChatflowRepository

logger = logging.getLogger("tailwinds.server")

LOCAL_FLOW = {"nodes": [{"id": "chat_0", "type": "chatLocal", "inputs": {}}], "edges": []}


def curl_line(settings: Settings, chatflow_id: str) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = f"http://{host}:{settings.port}/api/v1/predictions/{chatflow_id}"
    body = orjson.dumps({"question": "Hello world!", "streaming": True}).decode()
    return f"curl -N {url} -H 'Content-Type: application/json' -d {shlex.quote(body)}"


async def create_first_chatflow(chatflows: ChatflowRepository, settings: Settings) -> None:
    if await chatflows.count():
        return
    if not local_model_available(settings.local_model):
        logger.warning(
            "No chatflow yet. For a model that runs on this machine, %s and restart; or create "
            "one for any OpenAI-compatible server with POST /api/v1/chatflows (see the README).",
            INSTALL_HINT
            if settings.local_model == DEFAULT_LOCAL_MODEL
            else f"TAILWINDS_LOCAL_MODEL={settings.local_model} needs: "
            f"pip install 'tailwinds[local-gemma]'",
        )
        return
    chatflow = await chatflows.create("Local assistant", LOCAL_FLOW)
    logger.warning(
        "Created the chatflow %r (id %s) on the local model. Try it:\n\n    %s\n",
        chatflow.name,
        chatflow.id,
        curl_line(settings, chatflow.id),
    )
