"""The stored shape of a chatflow's graph (`flowData`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FlowNode(BaseModel):
    # extra keys (a UI's position, label …) are kept and ignored by the engine
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = Field(min_length=1, max_length=200)
    type: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    # the author's second switch for inputs a caller could abuse (engine/overrides.py)
    risky_overrides: list[str] = Field(default_factory=list, alias="riskyOverrides", max_length=100)


class FlowEdge(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    source: str
    target: str
    target_input: str = Field(alias="targetInput")


class FlowData(BaseModel):
    model_config = ConfigDict(extra="allow")

    nodes: list[FlowNode] = Field(min_length=1)
    edges: list[FlowEdge] = Field(default_factory=list)
