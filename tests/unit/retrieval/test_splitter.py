"""The recursive character splitter: chunk sizes, overlap, the separators it prefers,
and that nothing of the text is lost (a property over any text)."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailwinds.retrieval.splitter import MARKDOWN_SEPARATORS, split_text


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def covers(text: str, chunks: list[str]) -> bool:
    """The chunks, in order, cover the text without a gap (whitespace aside): each one
    starts at or before where the ones before it ended."""
    whole = _squeezed(text)
    end = 0
    for chunk in chunks:
        part = _squeezed(chunk)
        # the latest start at or before `end` where the chunk is found
        start = whole.rfind(part, 0, end + len(part))
        if start < 0 or start > end:
            return False
        end = max(end, start + len(part))
    return end == len(whole)


@settings(max_examples=300, deadline=None)
@given(
    # characters, and the Markdown markup the splitter cuts before
    text=st.lists(
        st.sampled_from(["a", "b", " ", "c", ".", "\n", "#", "é", "😀", "\n## ", "\n```"]),
        max_size=200,
    ).map("".join),
    size=st.integers(2, 60),
    data=st.data(),
)
def test_chunks_fit_and_cover_the_text(text: str, size: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    separators = data.draw(st.sampled_from([None, MARKDOWN_SEPARATORS]))
    chunks = split_text(text, size, overlap, *([separators] if separators else []))
    assert all(0 < len(c) <= size for c in chunks)
    assert all(c == c.strip() for c in chunks)
    assert all(c in text for c in chunks)
    assert covers(text, chunks)
    assert (chunks == []) == (text.strip() == "")


def test_paragraphs_are_kept_whole_when_they_fit() -> None:
    text = "a" * 300 + "\n\n" + "b" * 300 + "\n\n" + "c" * 50
    assert split_text(text, 400, 0) == ["a" * 300, "b" * 300 + "\n\n" + "c" * 50]


def test_a_long_paragraph_is_cut_at_sentences_then_words_then_characters() -> None:
    sentences = "One two three. Four five six. Seven eight nine."
    assert split_text(sentences, 17, 0) == ["One two three.", "Four five six.", "Seven eight nine."]
    assert split_text("alpha beta gamma delta", 11, 0) == ["alpha beta", "gamma delta"]
    assert split_text("x" * 25, 10, 0) == ["x" * 10, "x" * 10, "x" * 5]


def test_overlap_carries_whole_pieces_into_the_next_chunk() -> None:
    text = " ".join(f"w{i}" for i in range(12))  # "w0 w1 ... w11", 3-4 characters a word
    chunks = split_text(text, 12, 6)
    assert chunks[0] == "w0 w1 w2 w3"
    for before, after in itertools.pairwise(chunks):
        # the next chunk starts with the last words of the one before, at most 6 chars
        shared = [w for w in before.split() if w in after.split()]
        assert shared and shared == after.split()[: len(shared)]
        assert len(" ".join(shared)) <= 6
    assert chunks[-1].endswith("w11")


def test_markdown_is_cut_at_headings_and_a_heading_starts_its_chunk() -> None:
    text = "# Title\nintro text here\n## Part one\n" + "p " * 20 + "\n## Part two\nend"
    assert split_text(text, 60, 0, MARKDOWN_SEPARATORS) == [
        "# Title\nintro text here",
        "## Part one\n" + ("p " * 20).strip(),
        "## Part two\nend",
    ]


def test_overlap_must_be_smaller_than_the_chunk() -> None:
    with pytest.raises(ValueError, match="chunk_overlap"):
        split_text("text", 10, 10)


def test_empty_and_blank_texts_have_no_chunks() -> None:
    assert split_text("", 10, 2) == []
    assert split_text(" \n\n \t", 10, 2) == []
