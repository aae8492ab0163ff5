"""A model's reasoning, apart from its answer: `<think>…</think>` in the text, split on
the fly.

DeepSeek-R1 and its distills (and Qwen3, QwQ) served by llama.cpp, Ollama's `/v1` or vLLM
without a reasoning parser write their reasoning into the answer between `<think>` and
`</think>`. The tags arrive cut anywhere across chunks ("<th" + "ink>"): a piece that ends
with the start of a tag is held back until the next one tells. Providers that send the
reasoning apart (`delta.reasoning_content`, Anthropic's `thinking_delta`, Ollama's
`thinking`, Gemini's `thought` parts) yield `ThinkingEvent`s directly.
"""

from __future__ import annotations

from tailwinds.messages import ThinkingEvent

OPEN, CLOSE = "<think>", "</think>"


def _held(text: str, tag: str) -> int:
    """How many characters at the end of `text` are a proper start of `tag` (to hold)."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


MAX_LEADING_SPACE = 64  # whitespace held at the answer's start, waiting for `<think>`


class ThinkSplitter:
    """Text pieces in; answer text (str) and `ThinkingEvent`s out, in order.

    `<think>` opens the reasoning only at the very start of the answer (after whitespace),
    as llama.cpp's, vLLM's and Ollama's reasoning parsers read it: once answer text has
    begun, a `<think>` in it is the answer's own text (a model explaining R1's format, a
    regular expression that strips the tags), never swallowed as reasoning. One block per
    answer: after `</think>` everything is the answer.

    `busy` is False once the answer has begun and nothing is held: then a piece is the
    answer as it is, and callers skip `feed` for it unless it holds a `<` (the token path
    stays a check; `feed` then hands it back whole)."""

    __slots__ = ("after_close", "done", "held", "inside")

    def __init__(self) -> None:
        self.inside = False
        self.held = ""  # a start of a tag, or the answer's leading whitespace, kept
        self.after_close = False  # the answer's whitespace after `</think>` is dropped
        self.done = False  # no `<think>` any more: the answer has begun

    @property
    def busy(self) -> bool:
        return not self.done or self.inside or bool(self.held) or self.after_close

    def feed(self, text: str) -> list[str | ThinkingEvent]:
        out: list[str | ThinkingEvent] = []
        text = self.held + text
        self.held = ""
        while text:
            if self.inside:
                at = text.find(CLOSE)
                if at < 0:
                    keep = _held(text, CLOSE)
                    self._emit(out, text[: len(text) - keep])
                    self.held = text[len(text) - keep :]
                    break
                self._emit(out, text[:at])
                text = text[at + len(CLOSE) :]
                self.inside = False
                self.after_close = self.done = True
                continue
            if not self.done:
                rest = text.lstrip()
                if rest.startswith(OPEN):
                    text = rest[len(OPEN) :]
                    self.inside = True
                    continue
                if (not rest or OPEN.startswith(rest)) and len(text) <= MAX_LEADING_SPACE:
                    self.held = text  # whitespace or "<th": the next piece tells
                    break
                self.done = True
            self._emit(out, text)
            break
        return out

    def flush(self) -> list[str | ThinkingEvent]:
        """At the answer's end: what is held, as what it was (an unclosed start of a tag
        is text after all)."""
        out: list[str | ThinkingEvent] = []
        held, self.held = self.held, ""
        self._emit(out, held)
        return out

    def _emit(self, out: list[str | ThinkingEvent], text: str) -> None:
        if self.inside:
            if text:
                out.append(ThinkingEvent(text))
            return
        if self.after_close:
            text = text.lstrip()
            if not text:
                return
            self.after_close = False
        if text:
            out.append(text)
