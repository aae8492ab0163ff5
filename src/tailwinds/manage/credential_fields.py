"""A provider credential as `POST /api/v1/credentials` takes it and as an export seals it:
one model for both, so an import stores only what a create would."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tailwinds.store.storable import storable


class CredentialBody(BaseModel):
    """Stored encrypted, exactly as given (`storable`), or refused naming the field."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[str, AfterValidator(storable)] = Field(min_length=1, max_length=200)
    provider: Annotated[str, AfterValidator(storable)] = Field(
        min_length=1, max_length=100, examples=["openai", "anthropic"]
    )
    data: Annotated[dict[str, str], AfterValidator(storable)] = Field(examples=[{"apiKey": "sk-…"}])
