"""A question's uploads joined to what the model is sent: the images on the user turn that
asks the question, the text of files appended to it. Stored history keeps the question as
asked; only this turn's request carries them."""

from __future__ import annotations

from dataclasses import replace

from tailwinds.engine.context import Turn
from tailwinds.messages import ChatMessage, FileText, ImagePart


def with_uploads(messages: list[ChatMessage], turn: Turn) -> list[ChatMessage]:
    """`messages` with `turn`'s uploads on the last user message holding its question (a
    follow-up or summary request of the same run, which holds it not, gets none)."""
    if not turn.uploads:
        return messages
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if message.role != "user":
            continue
        if turn.question not in message.content:
            return messages
        images = tuple(u for u in turn.uploads if type(u) is ImagePart)
        texts = [u for u in turn.uploads if type(u) is FileText]
        content = message.content + "".join(f"\n\n--- {t.name} ---\n{t.text}" for t in texts)
        out = list(messages)
        out[i] = replace(message, content=content, images=message.images + images)
        return out
    return messages


def uploads_json(uploads: list[ImagePart | FileText]) -> list[dict[str, str]]:
    """The uploads as a queue job carries them to a worker."""
    return [
        {"image": u.mime, "data": u.data}
        if type(u) is ImagePart
        else {"file": u.name, "text": u.text}  # type: ignore[union-attr]
        for u in uploads
    ]


def uploads_from_json(items: list[dict[str, str]] | None) -> list[ImagePart | FileText]:
    return [
        ImagePart(item["image"], item["data"])
        if "image" in item
        else FileText(item["file"], item["text"])
        for item in items or ()
    ]
