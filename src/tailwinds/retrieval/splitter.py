"""A recursive character splitter: cut at the largest separator that keeps chunks under
`chunk_size`, carrying `chunk_overlap` characters from one chunk into the next."""

from __future__ import annotations

SEPARATORS = ("\n\n", "\n", ". ", " ", "")
MARKDOWN_SEPARATORS = ("\n# ", "\n## ", "\n### ", "\n#### ", "\n```", *SEPARATORS)


def split_text(
    text: str,
    chunk_size: int = 1000,
    chunk_overlap: int = 200,
    separators: tuple[str, ...] = SEPARATORS,
) -> list[str]:
    if chunk_overlap >= chunk_size:
        raise ValueError("chunk_overlap must be smaller than chunk_size")
    pieces = _pieces(text.strip(), chunk_size, separators)
    return _merge(pieces, chunk_size, chunk_overlap)


def _starts_a_unit(separator: str) -> bool:
    """Whether the separator is markup that opens what follows it (a Markdown heading, a
    code fence), so it goes with the piece after it, as LangChain's `keep_separator=
    "start"` does; blank lines, sentence ends and spaces close the piece before."""
    return separator.startswith("\n") and bool(separator.strip())


def _pieces(text: str, size: int, separators: tuple[str, ...]) -> list[str]:
    """Pieces no longer than `size`, each with the separator it was cut at: at its end,
    or at its start for markup that opens a unit (`_starts_a_unit`)."""
    if len(text) <= size:
        return [text] if text else []
    for i, separator in enumerate(separators):
        if separator == "":
            return [text[j : j + size] for j in range(0, len(text), size)]
        if separator in text:
            parts = text.split(separator)
            opens = _starts_a_unit(separator)
            out: list[str] = []
            for k, part in enumerate(parts):
                if opens:
                    piece = (separator if k > 0 else "") + part
                else:
                    piece = part + (separator if k < len(parts) - 1 else "")
                if len(piece) <= size:
                    out.append(piece)
                else:
                    out.extend(_pieces(piece, size, separators[i + 1 :]))
            return [p for p in out if p]
    return [text]


def _merge(pieces: list[str], size: int, overlap: int) -> list[str]:
    chunks: list[str] = []
    current: list[str] = []
    length = 0
    for piece in pieces:
        if current and length + len(piece) > size:
            chunks.append("".join(current).strip())
            # keep a tail of whole pieces, at most `overlap` long, to start the next chunk
            while current and (length > overlap or length + len(piece) > size):
                length -= len(current.pop(0))
        current.append(piece)
        length += len(piece)
    if current:
        chunks.append("".join(current).strip())
    return [c for c in chunks if c]
