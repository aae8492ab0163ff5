"""Files are read in a worker process: a crafted PDF that would keep pypdf busy for minutes
is stopped at the time limit with a 422 naming it, while the event loop keeps its turns;
ordinary files and ordinary refusals come back as before."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tailwinds import offload
from tailwinds.config import Settings
from tailwinds.errors import InvalidRequest, UnreadableFile
from tailwinds.retrieval.loaders import read_file
from tests.pdfs import slow_pdf, text_pdf


@pytest.fixture(autouse=True)
def lanes() -> Iterator[offload.Lanes]:
    yield offload.configure(Settings(parse_timeout_s=1.0, parse_workers=1))
    offload.close()


def test_a_slow_pdf_is_stopped_by_name_while_the_loop_keeps_turning() -> None:
    async def main() -> tuple[BaseException | None, float]:
        gaps: list[float] = []
        reading = asyncio.create_task(read_file("a.pdf", slow_pdf()))
        last = time.perf_counter()
        while not reading.done():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now
        return reading.exception(), max(gaps)

    error, worst_gap = asyncio.run(main())
    assert isinstance(error, UnreadableFile)
    assert error.status == 422
    assert error.field == "files.a.pdf"
    assert "longer than 1 s" in error.message and error.message.startswith("files.a.pdf:")
    assert worst_gap < 0.5  # parsed on the loop, one gap would be the whole parse


def test_files_are_read_as_before() -> None:
    docs = asyncio.run(read_file("paper.pdf", text_pdf("Axolotls regrow limbs.")))
    assert docs == [
        {"pageContent": "Axolotls regrow limbs.", "metadata": {"source": "paper.pdf", "page": 1}}
    ]
    rows = asyncio.run(read_file("t.csv", b"a,b\n1,2\n"))
    assert rows[0]["pageContent"] == "a: 1\nb: 2"


def test_a_refusal_from_the_worker_keeps_its_message_and_field() -> None:
    with pytest.raises(InvalidRequest) as refused:
        asyncio.run(read_file("broken.pdf", b"%PDF-1.4 this is not a pdf"))
    assert refused.value.status == 400
    assert refused.value.field == "files.broken.pdf"
    assert "broken.pdf is not a readable PDF" in refused.value.message
