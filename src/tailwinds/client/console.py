"""What the `tailwinds predict`, `chat` and `chatflows` commands do, on the SDK: tokens to
standard output as they arrive, everything else (sources, tools, ids) to standard error
so that the answer can be piped."""

from __future__ import annotations

import json
from typing import Any, TextIO

import click
from rich.console import Console
from rich.markup import escape

from tailwinds.client import SourceDocuments, Tailwinds, Thinking, Token, UsedTools
from tailwinds.client.events import Metadata, Prediction


def _summary(sources: list[dict[str, Any]], tools: list[dict[str, Any]], err: TextIO) -> None:
    """Sources and tools in a compact block, after the answer, on standard error."""
    if not sources and not tools:
        return
    console = Console(file=err, highlight=False, soft_wrap=True)
    for i, doc in enumerate(sources, 1):
        where = escape(str(doc.get("metadata", {}).get("source", "")))
        text = escape(" ".join(str(doc.get("pageContent", "")).split())[:100])
        console.print(f"  [bold]\\[{i}][/bold] [cyan]{where}[/cyan] [dim]{text}[/dim]")
    for tool in tools:
        call = escape(f"{tool.get('tool')}({json.dumps(tool.get('toolInput'))[:80]})")
        output = escape(str(tool.get("toolOutput", ""))[:80])
        console.print(f"  [bold]tool[/bold] [magenta]{call}[/magenta] → [dim]{output}[/dim]")


def predict(
    client: Tailwinds,
    chatflow_id: str,
    question: str,
    *,
    chat_id: str | None,
    stream: bool,
    out: TextIO,
    err: TextIO,
) -> str | None:
    """Ask once; returns the chat id, to continue the conversation."""
    if not stream:
        answer: Prediction = client.predict(chatflow_id, question, chat_id=chat_id)
        print(answer.text, file=out)
        _summary(answer.source_documents, answer.used_tools, err)
        return answer.chat_id
    sources: list[dict[str, Any]] = []
    tools: list[dict[str, Any]] = []
    with client.stream(chatflow_id, question, chat_id=chat_id) as events:
        try:
            for event in events:
                if type(event) is Token:
                    out.write(event.text)
                    out.flush()
                elif type(event) is Thinking:
                    err.write(event.text)  # the reasoning apart: stdout stays the answer
                    err.flush()
                elif type(event) is SourceDocuments:
                    sources.extend(event.documents)
                elif type(event) is UsedTools:
                    tools.extend(event.tools)
        except KeyboardInterrupt:
            if events.chat_id:
                client.abort(chatflow_id, events.chat_id)
            print("\n[stopped]", file=err)
            return events.chat_id
        print(file=out)
        _summary(sources, tools, err)
        metadata: Metadata | None = events.metadata
        if metadata and metadata.usage and metadata.usage.total_tokens is not None:
            print(f"  ({metadata.usage.total_tokens} tokens)", file=err)
        return events.chat_id


def chat(client: Tailwinds, chatflow_id: str, *, out: TextIO, err: TextIO) -> None:
    """Ask, answer, repeat, in one conversation. Ctrl-C stops an answer; Ctrl-D leaves."""
    chat_id: str | None = None
    print("Ctrl-C stops an answer, Ctrl-D leaves.", file=err)
    while True:
        try:
            question = click.prompt("you", prompt_suffix="> ", err=True)
        except (EOFError, click.Abort):
            print(file=err)
            return
        if not question.strip():
            continue
        chat_id = (
            predict(client, chatflow_id, question, chat_id=chat_id, stream=True, out=out, err=err)
            or chat_id
        )
