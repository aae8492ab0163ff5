"""Who may use a chatflow, and its compiled flow: the checks every route that runs or
reads a chatflow makes first (predictions, resumes, aborts, upserts, MCP tools)."""

from __future__ import annotations

from typing import Any

from tailwinds.config import Settings
from tailwinds.engine.compile import RUN_OVERRIDES, CompiledFlow, compile_flow
from tailwinds.errors import ChatflowNotFound, Unauthorized
from tailwinds.limits import KeyFailures, nothing
from tailwinds.offload import CLIENT
from tailwinds.runs.bearer import bearer_token, same_secret
from tailwinds.runs.flow_secrets import reveal
from tailwinds.store.apikeys import KEY_FORMAT, ApiKey, ApiKeyRepository
from tailwinds.store.chatflows import Chatflow, ChatflowRepository
from tailwinds.store.secrets import SecretBox

# how stale a chatflow read on the prediction path may be: saves a query per prediction
CHATFLOW_MAX_AGE_S = 1.0
# compiled flows kept (by chatflow id and version) before the cache starts over
MAX_COMPILED = 1000


class ChatflowAccess:
    def __init__(
        self,
        settings: Settings,
        chatflows: ChatflowRepository,
        api_keys: ApiKeyRepository,
        box: SecretBox,
    ) -> None:
        self.settings = settings
        self.chatflows = chatflows
        self.api_keys = api_keys
        self.box = box
        self.key_failures = KeyFailures(settings.max_key_failures_per_minute)
        self._compiled: dict[tuple[str, int], CompiledFlow] = {}

    async def authorized_chatflow(self, chatflow_id: str, authorization: str | None) -> Chatflow:
        """The chatflow, when the caller holds its API key (or it needs none)."""
        chatflow, _ = await self.authorize(chatflow_id, authorization)
        return chatflow

    async def authorize(
        self, chatflow_id: str, authorization: str | None
    ) -> tuple[Chatflow, ApiKey | None]:
        """The chatflow and the API key that opened it (None: no key was needed, or the
        admin token opened it)."""
        chatflow = await self.chatflows.get(chatflow_id, max_age_s=CHATFLOW_MAX_AGE_S)
        if chatflow is None:
            raise ChatflowNotFound(chatflow_id)
        if chatflow.api_key_id is None:
            return chatflow, None
        key = bearer_token(authorization)
        if key is None:
            raise Unauthorized("this chatflow needs an API key: send `Authorization: Bearer <key>`")
        # the admin token opens every chatflow (the web app's playground uses it)
        admin = self.settings.admin_token
        if admin and same_secret(key, admin):
            return chatflow, None
        # a key not known good counts as a failure of its client until it proves right: a
        # client past the limit gets no more checks (only its known keys pass), and a
        # burst of checks cannot start more hashes than the limit
        forgive = nothing
        client = CLIENT.get()
        if not self.api_keys.known(chatflow.api_key_id, key):
            forgive = await self.key_failures.attempt(client)
        api_key = await self.api_keys.verify(chatflow.api_key_id, key)
        if api_key is None:
            await self.key_failures.pause(client)
            raise Unauthorized("the API key is not valid for this chatflow")
        forgive()
        return chatflow, api_key

    async def opened_keys(self, authorization: str | None, key_ids: set[str]) -> set[str] | None:
        """Which of the API keys `key_ids` the caller's token is (at most one: keys are
        unique), or None when it is the admin token, which opens them all. A token that is
        none of them counts as one failed key for its client, as on a prediction, however
        many keys were tried: listing what a token opens is not guessing keys."""
        key = bearer_token(authorization)
        if key is None or not key_ids:
            return set()
        admin = self.settings.admin_token
        if admin and same_secret(key, admin):
            return None
        if not KEY_FORMAT.fullmatch(key):
            # not of the issued form, so no key: nothing guessed, nothing counted. The
            # OpenAI-compatible clients must send some string (docs: "any string for a
            # chatflow without a key"), and Open WebUI lists models on every page load:
            # counted, it was 429 after 10 listings a minute, for that whole address
            return set()
        client = CLIENT.get()
        forgive = nothing
        if not any(self.api_keys.known(key_id, key) for key_id in key_ids):
            forgive = await self.key_failures.attempt(client)
        for key_id in sorted(key_ids):
            if await self.api_keys.verify(key_id, key) is not None:
                forgive()
                return {key_id}
        await self.key_failures.pause(client)
        return set()

    def compiled(self, chatflow: Chatflow, overrides: dict[str, Any]) -> CompiledFlow:
        node_overrides = {k: v for k, v in overrides.items() if k not in RUN_OVERRIDES}
        if node_overrides:
            return compile_flow(reveal(chatflow.flow_data, self.box), node_overrides)
        key = (chatflow.id, chatflow.version)
        flow = self._compiled.get(key)
        if flow is None:
            if len(self._compiled) > MAX_COMPILED:
                self._compiled.clear()
            flow = self._compiled[key] = compile_flow(reveal(chatflow.flow_data, self.box))
        return flow
