"""Prompt templates: plain variables only, rendered with history and run variables."""

from __future__ import annotations

import pytest

from tailwinds.errors import InvalidRequest
from tailwinds.messages import ChatMessage
from tailwinds.nodes.chains import history_as_text
from tailwinds.nodes.prompts import PromptTemplate, template_variables


def node(template: str, **variables: str) -> PromptTemplate:
    return PromptTemplate("p", PromptTemplate.Inputs(template=template, variables=variables), {})


def test_render_with_defaults_and_run_vars() -> None:
    prompt = node("{greeting} {name}: {question} {{literal}}\n{history}", greeting="Hi")
    history = history_as_text([ChatMessage("user", "a"), ChatMessage("assistant", "b")])
    text = prompt.render("why?", history, {"name": "Ada"})
    assert text == "Hi Ada: why? {literal}\nHuman: a\nAI: b"
    assert prompt.uses_history


def test_missing_variable_names_the_override_field() -> None:
    with pytest.raises(InvalidRequest, match=r"overrideConfig\.vars\.topic"):
        node("{question} about {topic}").check({})
    node("{question} about {topic}").check({"topic": "x"})


@pytest.mark.parametrize("template", ["{a.b}", "{a[0]}", "{a!r}", "{a:>10}", "{0}", "{"])
def test_only_plain_names(template: str) -> None:
    with pytest.raises(ValueError):
        template_variables(template)
