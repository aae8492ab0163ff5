"""Every text column takes what any source may hold (a PDF's U+0000, a lone surrogate), on
SQLite and PostgreSQL: names, document chunks and their metadata."""

from __future__ import annotations

from tailwinds.store.chatflows import ChatflowRepository
from tailwinds.store.db import Database
from tailwinds.store.documents import Chunk, DocumentRepository
from tailwinds.store.storable import REPLACEMENT
from tests.integration.test_turn_storage import run

R = REPLACEMENT


def test_document_chunks_with_nul_and_surrogates_are_stored(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        repo = DocumentRepository(db)
        store = await repo.create_store("docs\x00", {})
        chunk = Chunk(
            id="chunk-1",
            source="file\x00.pdf",
            position=0,
            content="text from a PDF\x00 with \ud800 in it",
            metadata={"title": "t\ud83d", "page": 1, "raw": "\x00"},
            content_hash="h",
            embedding=b"\x00\x00\x80?",
        )
        await repo.replace_sources(store.id, {"file\x00.pdf"}, [chunk])
        (stored,) = await repo.chunks(store.id)
        assert stored.content == f"text from a PDF{R} with {R} in it"
        assert stored.source == f"file{R}.pdf"
        assert stored.metadata == {"title": f"t{R}", "page": 1, "raw": "\x00"}
        assert stored.embedding == b"\x00\x00\x80?"
        # the same source, as a caller names it again, finds its chunks
        assert [c.id for c in await repo.chunks(store.id, ["file\x00.pdf"])] == ["chunk-1"]
        assert (await repo.get_store(store.id)).name == f"docs{R}"  # type: ignore[union-attr]

    run(database_url, scenario)


def test_a_chatflow_name_with_nul_is_stored(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        repo = ChatflowRepository(db)
        created = await repo.create("support\x00bot", {"nodes": [{"id": "a\x00"}]})
        fetched = await repo.get(created.id)
        assert fetched is not None
        assert fetched.name == f"support{R}bot"
        assert fetched.flow_data == {"nodes": [{"id": "a\x00"}]}  # JSON escapes it

    run(database_url, scenario)
