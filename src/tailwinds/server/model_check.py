"""Are the models the chatflows name reachable? For `/api/v1/ready?models=true`: one TCP
connection to each distinct model server (no request, no key sent), and the local model's
files. Only on demand: a load balancer's probe should not knock on every provider."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from tailwinds.errors import TailwindsError
from tailwinds.providers.llama_cpp import local_model_available

CONNECT_TIMEOUT_S = 2.0


async def check_models(predictions: Any, chatflows: Any) -> dict[str, str]:
    endpoints: set[tuple[str, int]] = set()
    local = False
    for chatflow in await chatflows.list():
        try:
            flow = predictions.compiled(chatflow, {})
        except TailwindsError:
            continue  # saved before a node changed: its own runs will say so
        for node in flow.nodes.values():
            if node.type_name == "chatLocal":
                local = True
            base_url = getattr(node.inputs, "base_url", None)
            if isinstance(base_url, str):
                parts = urlsplit(base_url)
                if parts.hostname:
                    default = 443 if parts.scheme == "https" else 80
                    endpoints.add((parts.hostname, parts.port or default))
    results: dict[str, str] = {}
    if local:
        results["local"] = "ok" if local_model_available() else "error: not installed"
    checks = sorted(endpoints)
    outcomes = await asyncio.gather(*(_connect(host, port) for host, port in checks))
    for (host, port), outcome in zip(checks, outcomes, strict=True):
        results[f"{host}:{port}"] = outcome
    return results


async def _connect(host: str, port: int) -> str:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        return f"error: {type(exc).__name__}"
    writer.close()
    return "ok"
