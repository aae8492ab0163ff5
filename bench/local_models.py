"""Which packaged local model answers simple questions better: Gemma 3 270M (base) and
SmolLM2-135M-Instruct, each prompted as the `chatLocal` node prompts it
(`tailwinds.providers.local_catalog`), on 20 fixed prompts.

    python -m bench.local_models            # writes bench/LOCAL_MODELS.md

The scoring rule: an answer scores 1 when it holds at least `need` of the prompt's
expected words (case-insensitive, whole words; "8" and "eight" both count) and is at most
400 characters long after trimming; else 0. Decoding is greedy (temperature 0), at most
64 tokens, the same context size and threads for both, so a run is repeatable. Speed is
reported beside (tokens per second of generation, load time apart) but does not score.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tailwinds.messages import ChatMessage
from tailwinds.providers.llama_cpp import plain_buffers_where_amx
from tailwinds.providers.local_catalog import CATALOG, gguf_path

MAX_TOKENS = 64
MAX_CHARS = 400
OUT = Path(__file__).with_name("LOCAL_MODELS.md")


@dataclass(frozen=True)
class Prompt:
    text: str
    expected: tuple[str, ...]
    need: int = 1


PROMPTS = [
    Prompt("Hello world!", ("hello", "hi", "hey", "greetings", "welcome")),
    Prompt("What is the capital of France?", ("paris",)),
    Prompt("Tell me about kites.", ("kite", "kites", "fly", "flying", "wind", "string")),
    Prompt("What color is the sky on a clear day?", ("blue",)),
    Prompt("How many legs does a spider have?", ("eight", "8")),
    Prompt("What is 2 + 2?", ("4", "four")),
    Prompt("How do you say thank you in French?", ("merci",)),
    Prompt("Name a fruit that is yellow.", ("banana", "bananas", "lemon", "pineapple", "mango")),
    Prompt("What do bees make?", ("honey",)),
    Prompt("Good morning! How are you?", ("good", "fine", "well", "great", "morning")),
    Prompt("What is the opposite of hot?", ("cold", "cool")),
    Prompt("Which planet do we live on?", ("earth",)),
    Prompt("What is frozen water called?", ("ice",)),
    Prompt("How many days are in a week?", ("seven", "7")),
    Prompt("What animal says meow?", ("cat", "cats", "kitten")),
    Prompt(
        "List three colors.",
        ("red", "blue", "green", "yellow", "orange", "purple", "black", "white", "pink"),
        need=3,
    ),
    Prompt("What is the largest ocean on Earth?", ("pacific",)),
    Prompt("Translate the word dog into Spanish.", ("perro",)),
    Prompt("Thank you for your help!", ("welcome", "pleasure", "glad", "happy", "anytime")),
    Prompt("Write a short sentence about the sun.", ("sun",)),
]


def score(prompt: Prompt, answer: str) -> int:
    words = set(re.findall(r"[a-z0-9]+", answer.lower()))
    hits = sum(1 for word in prompt.expected if word in words)
    return int(hits >= prompt.need and 0 < len(answer.strip()) <= MAX_CHARS)


def run_model(name: str, models_dir: Path) -> dict[str, object]:
    from llama_cpp import Llama

    plain_buffers_where_amx()
    spec = CATALOG[name]
    started = time.perf_counter()
    llama = Llama(
        model_path=str(gguf_path(name, models_dir)), n_ctx=2048, n_threads=2, verbose=False
    )
    load_s = time.perf_counter() - started
    rows = []
    tokens = 0
    generating_s = 0.0
    for prompt in PROMPTS:
        text = spec.prompt([ChatMessage("user", prompt.text)])
        started = time.perf_counter()
        out = llama.create_completion(
            text, max_tokens=MAX_TOKENS, temperature=0.0, stop=list(spec.stop)
        )
        generating_s += time.perf_counter() - started
        answer = out["choices"][0]["text"].strip()
        tokens += out["usage"]["completion_tokens"]
        rows.append({"prompt": prompt.text, "answer": answer, "score": score(prompt, answer)})
        print(f"{name} {len(rows)}/20 {rows[-1]['score']} {answer[:60]!r}", flush=True)
    return {
        "model": name,
        "label": spec.label,
        "score": sum(int(r["score"]) for r in rows),  # type: ignore[call-overload]
        "load_s": round(load_s, 2),
        "tokens_per_s": round(tokens / generating_s, 1) if generating_s else None,
        "rows": rows,
    }


def report(results: list[dict[str, object]], load: str) -> str:
    lines = [
        "# Local models: Gemma 3 270M vs SmolLM2-135M-Instruct",
        "",
        "Written by `python -m bench.local_models` (see its docstring for the scoring rule:",
        "1 point per answer holding the prompt's expected words, at most 400 characters;",
        "greedy decoding, 64 tokens at most, 2 threads, each model prompted as `chatLocal`",
        "prompts it).",
        "",
        f"Machine: {os.cpu_count()} CPUs, load average {load} at the start: the speeds are",
        "only comparable with each other, within one run.",
        "",
        "| model | score (of 20) | generation tokens/s | load s |",
        "| --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(f"| {r['label']} | {r['score']} | {r['tokens_per_s']} | {r['load_s']} |")
    lines += ["", "## Answers", ""]
    header = "| prompt | " + " | ".join(str(r["model"]) for r in results) + " |"
    lines += [header, "| --- |" + " --- |" * len(results)]
    for i, prompt in enumerate(PROMPTS):
        cells = []
        for r in results:
            row = r["rows"][i]  # type: ignore[index]
            answer = " ".join(row["answer"].split())[:160].replace("|", "\\|")
            cells.append(f"{'✓' if row['score'] else '✗'} {answer}")
        lines.append(f"| {prompt.text} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    models_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.home() / ".tailwinds" / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    results = [run_model(name, models_dir) for name in ("gemma3-270m", "smollm2-135m")]
    OUT.write_text(report(results, load))
    OUT.with_suffix(".json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    for r in results:
        print(f"{r['model']}: {r['score']}/20, {r['tokens_per_s']} tokens/s")


if __name__ == "__main__":
    main()
