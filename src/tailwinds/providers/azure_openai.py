"""Azure OpenAI: OpenAI's chat completions and embeddings wire formats, at a deployment.

Reference: learn.microsoft.com/azure/ai-services/openai/reference (data plane inference).

    POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version={version}
    POST {endpoint}/openai/deployments/{deployment}/embeddings?api-version={version}

The key goes in an `api-key` header; a Microsoft Entra ID token instead goes as
`Authorization: Bearer <token>`. The stream is OpenAI's, with Azure's additions that the
OpenAI parser passes over: a first chunk with no choices and `prompt_filter_results`,
`content_filter_results` in each choice. Errors are OpenAI-shaped objects whose `code` is
the HTTP status as a string (`"429"`, `"401"`) or a name (`DeploymentNotFound`,
`content_filter`); the HTTP status decides the error class.
"""

from __future__ import annotations

from urllib.parse import quote

from tailwinds.providers.base import ProviderLimits
from tailwinds.providers.openai_chat import OpenAIChatProvider
from tailwinds.providers.openai_embeddings import OpenAIEmbeddings
from tailwinds.wire import WireClient

# the latest GA data-plane version with `stream_options.include_usage` and tool calling
DEFAULT_API_VERSION = "2024-10-21"


def deployment_url(endpoint: str, deployment: str) -> str:
    """`{endpoint}/openai/deployments/{deployment}`, the deployment's name escaped."""
    return f"{endpoint.rstrip('/')}/openai/deployments/{quote(deployment, safe='')}"


def _key_header(auth: str) -> str | None:
    return "api-key" if auth == "apiKey" else None  # else Authorization: Bearer


def azure_chat(
    wire: WireClient,
    endpoint: str,
    deployment: str,
    api_version: str,
    api_key: str | None,
    limits: ProviderLimits,
    auth: str = "apiKey",
) -> OpenAIChatProvider:
    """A chat provider for one deployment; `auth` is `apiKey` (the `api-key` header) or
    `bearer` (an Entra ID token as `Authorization: Bearer`)."""
    return OpenAIChatProvider(
        wire,
        deployment_url(endpoint, deployment),
        api_key,
        limits,
        path=f"/chat/completions?api-version={quote(api_version, safe='')}",
        key_header=_key_header(auth),
    )


def azure_embeddings(
    wire: WireClient,
    endpoint: str,
    deployment: str,
    api_version: str,
    api_key: str | None,
    limits: ProviderLimits,
    batch_size: int = 64,
    auth: str = "apiKey",
) -> OpenAIEmbeddings:
    return OpenAIEmbeddings(
        wire,
        deployment_url(endpoint, deployment),
        api_key,
        deployment,
        limits,
        batch_size,
        path=f"/embeddings?api-version={quote(api_version, safe='')}",
        key_header=_key_header(auth),
    )
