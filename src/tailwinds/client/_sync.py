"""The blocking client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tailwinds.client import _core
from tailwinds.client._core import EventReader, Timeouts
from tailwinds.client.errors import PredictionError, StreamTimeout, TailwindsClientError
from tailwinds.client.events import Action, Error, Event, Metadata, Prediction


def _httpx_timeout(timeouts: Timeouts) -> httpx.Timeout:
    return httpx.Timeout(
        connect=timeouts.connect_s,
        read=max(timeouts.idle_s, timeouts.first_event_s),
        write=timeouts.idle_s,
        pool=timeouts.connect_s,
    )


class PredictionStream:
    """Iterate it for typed events; `text()` collects the answer. An `error` event raises
    `PredictionError` where it arrives, unless the stream was opened with
    `raise_errors=False`, which yields it as an `Error` event instead."""

    def __init__(
        self,
        client: httpx.Client,
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

    def __enter__(self) -> PredictionStream:
        try:
            self._response = self._client.send(self._request, stream=True)
        except httpx.TimeoutException as exc:
            raise StreamTimeout(f"no answer from the server: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise TailwindsClientError(f"cannot reach {self._request.url}: {exc}") from exc
        if self._response.status_code != 200:
            body = self._response.read()
            self._response.close()
            raise _core.error_for(self._response.status_code, self._response.headers, body)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._response is not None:
            self._response.close()

    def __iter__(self) -> Iterator[Event]:
        if self._response is None:
            raise TailwindsClientError("use the stream in a `with` block")
        if self.reader.ended:
            return  # read to its end already: `text()` after a loop, say
        started = time.monotonic()
        got_event = False
        chunks = self._response.iter_raw()
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                if self.reader.ended:
                    return
                if not self.reader.resumable:
                    raise TailwindsClientError(
                        "the server closed the stream before its end"
                    ) from None
                chunks = self._resume("the server closed the connection before the end")
                continue
            except httpx.ReadTimeout as exc:
                if not self.reader.resumable:
                    raise StreamTimeout(f"no event for {self._timeouts.idle_s:g} s") from exc
                chunks = self._resume(f"no event for {self._timeouts.idle_s:g} s")
                continue
            except httpx.TransportError as exc:
                if not self.reader.resumable:
                    raise TailwindsClientError(f"the stream broke: {exc}") from exc
                chunks = self._resume(f"the stream broke: {exc}")
                continue
            events = self.reader.feed(chunk)
            if not got_event:
                if not events and time.monotonic() - started > self._timeouts.first_event_s:
                    raise StreamTimeout(f"no first event in {self._timeouts.first_event_s:g} s")
                got_event = bool(events)
            for event in events:
                if type(event) is Error and self._raise_errors:
                    raise PredictionError(event.code, event.message)
                yield event
            if self.reader.ended:
                # done at `end`, not when the server closes: release the connection now
                self.close()
                return

    def _resume(self, why: str) -> Iterator[bytes]:
        """Reconnect after `Last-Event-ID`; the server replays what we missed."""
        assert self._response is not None and self.reader.message_id is not None
        self._response.close()
        path = _core.resume_path(self._chatflow_id, self.reader.message_id)
        last: Exception | None = None
        for pause in _core.RESUME_BACKOFF_S:
            time.sleep(pause)
            request = self._client.build_request(
                "GET",
                path,
                headers=_core.resume_headers(self._api_key, self.reader.last_event_id or "0"),
            )
            try:
                response = self._client.send(request, stream=True)
            except httpx.TransportError as exc:
                last = exc
                continue
            if response.status_code == 200:
                self._response = response
                self.reader.reconnected()
                return response.iter_raw()
            error = _core.error_for(response.status_code, response.headers, response.read())
            response.close()
            if response.status_code < 500:
                raise TailwindsClientError(f"{why}, and it cannot be resumed: {error}") from error
            last = error
        raise TailwindsClientError(f"{why}, and resuming it failed: {last}") from last

    def text(self) -> str:
        for _ in self:
            pass
        return self.reader.text

    def approve(self, action: Action, tool_input: dict[str, Any] | None = None) -> None:
        """Let the waiting call run (with `tool_input` instead of the model's, if given);
        the answer goes on in this stream."""
        self._decide(action, "approve", tool_input, None)

    def reject(self, action: Action, message: str | None = None) -> None:
        """Decline the waiting call; the model is told (with `message` as the reason)."""
        self._decide(action, "reject", None, message)

    def _decide(
        self, action: Action, decision: str, tool_input: dict[str, Any] | None, msg: str | None
    ) -> None:
        headers = _core.headers(self._api_key)
        body = _core.action_body(decision, tool_input, msg)
        path = _core.action_path(self._chatflow_id, action.action_id)
        try:
            response = self._client.post(path, json=body, headers=headers)
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


class Tailwinds:
    """A Tailwinds server. `api_key` is a chatflow's key for predictions; `admin_token`
    the server's TAILWINDS_ADMIN_TOKEN for management calls."""

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
        self._http = httpx.Client(base_url=self.base_url, timeout=_httpx_timeout(self.timeouts))
        self.chatflows = Chatflows(self)
        self.api_keys = ApiKeys(self)
        self.document_stores = DocumentStores(self)

    def __enter__(self) -> Tailwinds:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def predict(
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
        data = self._json("POST", f"/api/v1/predictions/{chatflow_id}", body, self.api_key)
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
    ) -> PredictionStream:
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
        return PredictionStream(
            self._http, request, self.timeouts, raise_errors, chatflow_id, self.api_key
        )

    def export(self, passphrase: str | None = None) -> dict[str, Any]:
        """Every chatflow as one document; with `passphrase`, credentials and inline
        secrets too, encrypted with it. Needs the admin token."""
        body = {"passphrase": passphrase} if passphrase else {}
        return self._json("POST", "/api/v1/export", body, self.admin_token)

    def import_bundle(
        self, bundle: dict[str, Any], passphrase: str | None = None
    ) -> dict[str, Any]:
        """Create what an export holds; returns what was made and what failed."""
        body: dict[str, Any] = {"bundle": bundle}
        if passphrase:
            body["passphrase"] = passphrase
        return self._json("POST", "/api/v1/import", body, self.admin_token)

    def decide(
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
        return dict(self._json("POST", path, body, self.api_key))

    def abort(self, chatflow_id: str, chat_id: str) -> int:
        """Stop the chat's running predictions; returns how many there were."""
        data = self._json(
            "POST", f"/api/v1/predictions/{chatflow_id}/abort", {"chatId": chat_id}, self.api_key
        )
        return int(data["aborted"])

    def _json(self, method: str, path: str, body: Any, key: str | None) -> Any:
        try:
            response = self._http.request(method, path, json=body, headers=_core.headers(key))
        except httpx.TimeoutException as exc:
            raise StreamTimeout(f"no answer from the server: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise TailwindsClientError(f"cannot reach {self.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise _core.error_for(response.status_code, response.headers, response.content)
        return response.json() if response.content else None


class Chatflows:
    def __init__(self, client: Tailwinds) -> None:
        self._client = client

    def _call(self, method: str, path: str = "", body: Any = None) -> Any:
        return self._client._json(
            method, f"/api/v1/chatflows{path}", body, self._client.admin_token
        )

    def create(self, chatflow: dict[str, Any] | str | Path) -> dict[str, Any]:
        """From a dict `{name, flowData, …}` or a JSON file holding one (an export)."""
        if not isinstance(chatflow, dict):
            chatflow = Path(chatflow).read_text()
        return self._call("POST", "", _core.chatflow_payload(chatflow))

    def list(self) -> list[dict[str, Any]]:
        return self._call("GET")

    def get(self, chatflow_id: str) -> dict[str, Any]:
        return self._call("GET", f"/{chatflow_id}")

    def update(self, chatflow_id: str, **changes: Any) -> dict[str, Any]:
        return self._call("PUT", f"/{chatflow_id}", changes)

    def delete(self, chatflow_id: str) -> None:
        self._call("DELETE", f"/{chatflow_id}")


class ApiKeys:
    def __init__(self, client: Tailwinds) -> None:
        self._client = client

    def create(self, name: str) -> dict[str, Any]:
        """The answer holds the key itself: it is shown this once."""
        return self._client._json(
            "POST", "/api/v1/apikeys", {"name": name}, self._client.admin_token
        )

    def list(self) -> list[dict[str, Any]]:
        return self._client._json("GET", "/api/v1/apikeys", None, self._client.admin_token)

    def delete(self, api_key_id: str) -> None:
        self._client._json(
            "DELETE", f"/api/v1/apikeys/{api_key_id}", None, self._client.admin_token
        )


class DocumentStores:
    def __init__(self, client: Tailwinds) -> None:
        self._client = client

    def _call(self, method: str, path: str = "", body: Any = None) -> Any:
        path = f"/api/v1/document-stores{path}"
        return self._client._json(method, path, body, self._client.admin_token)

    def create(
        self, name: str, embedding: dict[str, Any], splitter: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return self._call(
            "POST", "", {"name": name, "embedding": embedding, "splitter": splitter or {}}
        )

    def upsert(self, store_id: str, documents: list[dict[str, Any]]) -> dict[str, Any]:
        """`[{pageContent, metadata: {source, …}}]`; a source sent again is replaced."""
        return self._call("POST", f"/{store_id}/upsert", {"documents": documents})

    def list(self) -> list[dict[str, Any]]:
        return self._call("GET")

    def get(self, store_id: str) -> dict[str, Any]:
        return self._call("GET", f"/{store_id}")

    def query(self, store_id: str, query: str, top_k: int = 4, mode: str = "hybrid") -> Any:
        return self._call(
            "POST", f"/{store_id}/query", {"query": query, "topK": top_k, "mode": mode}
        )

    def delete(self, store_id: str) -> None:
        self._call("DELETE", f"/{store_id}")
