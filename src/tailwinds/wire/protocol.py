"""The small client protocol the providers speak through (`WireClient` implements it, and
`AiohttpClient`, the escape hatch), and the setting that picks one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from tailwinds.outbound.addresses import AddressPolicy
from tailwinds.outbound.proxies import DIRECT, ProxyRules

if TYPE_CHECKING:
    from tailwinds.wire.client import WireClient

CLIENTS = ("wire", "aiohttp")


class ModelResponse(Protocol):
    """One answer: its status and kept headers (lower-case names), its body as it comes."""

    status: int
    headers: dict[str, str]

    async def read(self) -> bytes:
        """The body's next bytes as they arrive (never b"" before its end); b"" at the end.
        Raises `WireError` (`ConnectionClosed` when cut short), `TimeoutError`."""

    async def read_at_most(self, limit: int) -> bytes: ...

    async def read_all(self, limit: int) -> bytes: ...

    def set_idle_timeout(self, seconds: float) -> None: ...

    def close(self) -> None:
        """Pool the connection when the body was read to its end, else close it."""


class ModelClient(Protocol):
    async def post(
        self, url: str, headers: dict[str, str], body: bytes, connect_timeout_s: float
    ) -> ModelResponse:
        """POST once (never re-sent once written); the answer once its head is in, 1xx
        heads skipped, redirects not followed. Raises `WireError`, `OSError`,
        `TimeoutError`, `Refused`."""

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


def model_client(
    kind: str, policy: AddressPolicy | None, proxies: ProxyRules = DIRECT
) -> WireClient:
    """The client TAILWINDS_MODEL_CLIENT names: `wire` (ours) or `aiohttp`. Typed as
    `WireClient`, the name the providers' signatures use; both implement `ModelClient`
    (tests/integration/test_model_client_conformance.py holds them to the same table)."""
    from tailwinds.wire.client import WireClient

    if kind == "aiohttp":
        from tailwinds.wire.via_aiohttp import AiohttpClient

        return AiohttpClient(policy, proxies)  # type: ignore[return-value]
    if kind != "wire":
        raise ValueError(f"TAILWINDS_MODEL_CLIENT: expected one of {', '.join(CLIENTS)}")
    return WireClient(policy=policy, proxies=proxies)
