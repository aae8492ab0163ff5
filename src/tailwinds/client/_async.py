"""The asyncio client: the same calls as `Tailwinds`, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from tailwinds.client import _core
from tailwinds.client._core import EventReader, Timeouts
from tailwinds.client._sync import _httpx_timeout
from tailwinds.client.errors import PredictionError, StreamTimeout, TailwindsClientError
from tailwinds.client.events import Action, Error, Event, Metadata, Prediction


class AsyncPredictionStream:
    """`async with client.stream(...) as stream: async for event in stream: …`"""

    def __init__(
        self,
        client: httpx.AsyncClient,
        request: httpx.Request,
        timeouts: Timeouts,
        raise_errors: bool,
        chatflow_id: str = "",
        api_key: str | None = None,
    ) -> None:
        self._client = client
        self._request = request
        self._chatflow_id = chatflow_id
        self._api_key = api_key
        self._timeouts = timeouts
        self._raise_errors = raise_errors
        self._response: httpx.Response | None = None
        self.reader = EventReader()

    async def __aenter__(self) -> AsyncPredictionStream:
        try:
            self._response = await self._client.send(self._request, stream=True)
        except httpx.TimeoutException as exc:
            raise StreamTimeout(f"no answer from the server: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise TailwindsClientError(f"cannot reach {self._request.url}: {exc}") from exc
        if self._response.status_code != 200:
            body = await self._response.aread()
            await self._response.aclose()
            raise _core.error_for(self._response.status_code, self._response.headers, body)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._response is not None:
            await self._response.aclose()

    async def __aiter__(self) -> AsyncIterator[Event]:
        if self._response is None:
            raise TailwindsClientError("use the stream in an `async with` block")
        if self.reader.ended:
            return  # read to its end already: `text()` after a loop, say
        chunks = self._response.aiter_raw()
        wait_s = self._timeouts.first_event_s
        while True:
            try:
                async with asyncio.timeout(wait_s):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                if self.reader.ended:
                    return
                if not self.reader.resumable:
                    raise TailwindsClientError(
                        "the server closed the stream before its end"
                    ) from None
                chunks = await self._resume("the server closed the connection before the end")
                continue
            except TimeoutError as exc:
                what = "first event" if wait_s == self._timeouts.first_event_s else "event"
                if not self.reader.resumable:
                    raise StreamTimeout(f"no {what} in {wait_s:g} s") from exc
                chunks = await self._resume(f"no {what} in {wait_s:g} s")
                continue
            except httpx.TransportError as exc:
                if not self.reader.resumable:
                    raise TailwindsClientError(f"the stream broke: {exc}") from exc
                chunks = await self._resume(f"the stream broke: {exc}")
                continue
            events = self.reader.feed(chunk)
            if events:
                wait_s = self._timeouts.idle_s
            for event in events:
                if type(event) is Error and self._raise_errors:
                    raise PredictionError(event.code, event.message)
                yield event
            if self.reader.ended:
                # done at `end`, not when the server closes: release the connection now
                await self.aclose()
                return

    async def _resume(self, why: str) -> AsyncIterator[bytes]:
        """Reconnect after `Last-Event-ID`; the server replays what we missed."""
        assert self._response is not None and self.reader.message_id is not None
        await self._response.aclose()
        path = _core.resume_path(self._chatflow_id, self.reader.message_id)
        last: Exception | None = None
        for pause in _core.RESUME_BACKOFF_S:
            await asyncio.sleep(pause)
            request = self._client.build_request(
                "GET",
                path,
                headers=_core.resume_headers(self._api_key, self.reader.last_event_id or "0"),
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.TransportError as exc:
                last = exc
                continue
            if response.status_code == 200:
                self._response = response
                self.reader.reconnected()
                return response.aiter_raw()
            error = _core.error_for(response.status_code, response.headers, await response.aread())
            await response.aclose()
            if response.status_code < 500:
                raise TailwindsClientError(f"{why}, and it cannot be resumed: {error}") from error
            last = error
        raise TailwindsClientError(f"{why}, and resuming it failed: {last}") from last

    async def text(self) -> str:
        async for _ in self:
            pass
        return self.reader.text

    async def approve(self, action: Action, tool_input: dict[str, Any] | None = None) -> None:
        """Let the waiting call run (with `tool_input` instead of the model's, if given);
        the answer goes on in this stream."""
        await self._decide(action, "approve", tool_input, None)

    async def reject(self, action: Action, message: str | None = None) -> None:
        """Decline the waiting call; the model is told (with `message` as the reason)."""
        await self._decide(action, "reject", None, message)

    async def _decide(
        self, action: Action, decision: str, tool_input: dict[str, Any] | None, msg: str | None
    ) -> None:
        headers = _core.headers(self._api_key)
        body = _core.action_body(decision, tool_input, msg)
        path = _core.action_path(self._chatflow_id, action.action_id)
        try:
            response = await self._client.post(path, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise TailwindsClientError(f"cannot send the decision: {exc}") from exc
        if response.status_code >= 400:
            raise _core.error_for(response.status_code, response.headers, response.content)

    @property
    def thinking(self) -> str:
        """The model's reasoning received so far (`Thinking` events), apart from the text."""
        return self.reader.thinking

    @property
    def chat_id(self) -> str | None:
        return self.reader.chat_id

    @property
    def message_id(self) -> str | None:
        return self.reader.message_id

    @property
    def metadata(self) -> Metadata | None:
        return self.reader.metadata


class AsyncTailwinds:
    def __init__(
        self,
        base_url: str = "http://127.0.0.1:3000",
        api_key: str | None = None,
        *,
        admin_token: str | None = None,
        timeout: Timeouts | float | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.admin_token = admin_token
        self.timeouts = _core.timeouts_from(timeout)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=_httpx_timeout(self.timeouts)
        )
        self.chatflows = AsyncChatflows(self)
        self.document_stores = AsyncDocumentStores(self)

    async def __aenter__(self) -> AsyncTailwinds:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def predict(
        self,
        chatflow_id: str,
        question: str,
        *,
        chat_id: str | None = None,
        override_config: dict[str, Any] | None = None,
        history: list[dict[str, str]] | None = None,
    ) -> Prediction:
        body = _core.prediction_body(
            question,
            streaming=False,
            chat_id=chat_id,
            override_config=override_config,
            history=history,
        )
        data = await self._json("POST", f"/api/v1/predictions/{chatflow_id}", body, self.api_key)
        return Prediction.from_json(data)

    def stream(
        self,
        chatflow_id: str,
        question: str,
        *,
        chat_id: str | None = None,
        override_config: dict[str, Any] | None = None,
        history: list[dict[str, str]] | None = None,
        raise_errors: bool = True,
        resume_grace_s: float = _core.DEFAULT_RESUME_GRACE_S,
    ) -> AsyncPredictionStream:
        """Stream the answer. A dropped connection is resumed where it broke, as long as
        the server kept the run for `resume_grace_s` (0: a disconnect stops the run)."""
        body = _core.prediction_body(
            question,
            streaming=True,
            chat_id=chat_id,
            override_config=override_config,
            history=history,
            resume_grace_s=resume_grace_s,
        )
        request = self._http.build_request(
            "POST",
            f"/api/v1/predictions/{chatflow_id}",
            json=body,
            headers=_core.headers(self.api_key, streaming=True),
        )
        return AsyncPredictionStream(
            self._http, request, self.timeouts, raise_errors, chatflow_id, self.api_key
        )

    async def decide(
        self,
        chatflow_id: str,
        action_id: str,
        decision: str,
        *,
        tool_input: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Answer an `Action` of a running stream: `decision` "approve" (with `tool_input`
        the call runs with it instead) or "reject" (`message`: the reason the model is
        told). `NotFoundError` for no such action; `APIError` 409 when it was decided
        already, expired or its run ended."""
        body = _core.action_body(decision, tool_input, message)
        path = _core.action_path(chatflow_id, action_id)
        return dict(await self._json("POST", path, body, self.api_key))

    async def abort(self, chatflow_id: str, chat_id: str) -> int:
        data = await self._json(
            "POST", f"/api/v1/predictions/{chatflow_id}/abort", {"chatId": chat_id}, self.api_key
        )
        return int(data["aborted"])

    async def _json(self, method: str, path: str, body: Any, key: str | None) -> Any:
        try:
            response = await self._http.request(method, path, json=body, headers=_core.headers(key))
        except httpx.TimeoutException as exc:
            raise StreamTimeout(f"no answer from the server: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise TailwindsClientError(f"cannot reach {self.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise _core.error_for(response.status_code, response.headers, response.content)
        return response.json() if response.content else None


class AsyncChatflows:
    def __init__(self, client: AsyncTailwinds) -> None:
        self._client = client

    async def _call(self, method: str, path: str = "", body: Any = None) -> Any:
        return await self._client._json(
            method, f"/api/v1/chatflows{path}", body, self._client.admin_token
        )

    async def create(self, chatflow: dict[str, Any] | str | Path) -> dict[str, Any]:
        if not isinstance(chatflow, dict):
            chatflow = await asyncio.to_thread(Path(chatflow).read_text)
        return await self._call("POST", "", _core.chatflow_payload(chatflow))

    async def list(self) -> list[dict[str, Any]]:
        return await self._call("GET")

    async def get(self, chatflow_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/{chatflow_id}")

    async def update(self, chatflow_id: str, **changes: Any) -> dict[str, Any]:
        return await self._call("PUT", f"/{chatflow_id}", changes)

    async def delete(self, chatflow_id: str) -> None:
        await self._call("DELETE", f"/{chatflow_id}")


class AsyncDocumentStores:
    def __init__(self, client: AsyncTailwinds) -> None:
        self._client = client

    async def _call(self, method: str, path: str = "", body: Any = None) -> Any:
        path = f"/api/v1/document-stores{path}"
        return await self._client._json(method, path, body, self._client.admin_token)

    async def create(
        self, name: str, embedding: dict[str, Any], splitter: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body = {"name": name, "embedding": embedding, "splitter": splitter or {}}
        return await self._call("POST", "", body)

    async def upsert(self, store_id: str, documents: list[dict[str, Any]]) -> dict[str, Any]:
        return await self._call("POST", f"/{store_id}/upsert", {"documents": documents})

    async def list(self) -> list[dict[str, Any]]:
        return await self._call("GET")

    async def delete(self, store_id: str) -> None:
        await self._call("DELETE", f"/{store_id}")
