"""Prompt nodes."""

from __future__ import annotations

import string
from typing import Any, ClassVar

from pydantic import Field, field_validator

from tailwinds.engine.registry import Node, NodeInputs, register_node
from tailwinds.errors import InvalidRequest

BUILTIN_VARIABLES = frozenset({"question", "history"})


def template_variables(template: str) -> list[str]:
    """The `{name}` fields of a template. Only plain names: `{x.attr}` or `{x[0]}` would let
    a template reach into Python objects."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"{{{name}}} is not a plain variable name")
        names.append(name)
    return names


@register_node
class PromptTemplate(Node):
    """A template with `{question}`, `{history}` and variables from `overrideConfig.vars`
    (or the defaults in `variables`). Double a brace to write it literally: `{{`."""

    type_name: ClassVar[str] = "promptTemplate"
    category: ClassVar[str] = "prompt"
    label: ClassVar[str] = "Prompt template"

    class Inputs(NodeInputs):
        template: str = Field(min_length=1)
        variables: dict[str, str] = Field(default_factory=dict)

        @field_validator("template")
        @classmethod
        def _plain_fields(cls, template: str) -> str:
            template_variables(template)
            return template

    inputs: Inputs

    @property
    def uses_history(self) -> bool:
        return "history" in template_variables(self.inputs.template)

    def check(self, run_vars: dict[str, Any]) -> None:
        for name in template_variables(self.inputs.template):
            if (
                name not in BUILTIN_VARIABLES
                and name not in run_vars
                and (name not in self.inputs.variables)
            ):
                raise InvalidRequest(
                    f"the prompt of node {self.node_id!r} needs this variable",
                    field=f"overrideConfig.vars.{name}",
                )

    def render(self, question: str, history: str, run_vars: dict[str, Any]) -> str:
        values = {**self.inputs.variables, **{k: str(v) for k, v in run_vars.items()}}
        values.update(question=question, history=history)
        return self.inputs.template.format_map(values)
