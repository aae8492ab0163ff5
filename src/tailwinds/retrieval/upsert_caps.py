"""How much one upsert may hold: documents before splitting, chunks after splitting and
before any embedding (TAILWINDS_MAX_UPSERT_DOCUMENTS, TAILWINDS_MAX_UPSERT_CHUNKS).

Each document and each chunk costs memory, a database row and an embedding call on the
operator's model server, and an upsert route may be open to anyone (a keyless chatflow's
`/api/v1/vector/upsert/{id}`): so both are refused with 413 before that work."""

from __future__ import annotations

from tailwinds.config import Settings
from tailwinds.errors import PayloadTooLarge


def check_documents(count: int, settings: Settings, where: str = "documents") -> None:
    """Raises `PayloadTooLarge` (413) naming `where` (the field, or a file) when `count`
    documents are more than one upsert may hold."""
    cap = settings.max_upsert_documents
    if count > cap:
        raise PayloadTooLarge(
            f"{where}: more than {cap} documents in one upsert "
            "(TAILWINDS_MAX_UPSERT_DOCUMENTS); send them in several upserts"
        )


def check_chunks(count: int, settings: Settings) -> None:
    """Raises `PayloadTooLarge` (413) when the documents split into more chunks than one
    upsert may embed."""
    cap = settings.max_upsert_chunks
    if count > cap:
        raise PayloadTooLarge(
            f"documents: split into {count} chunks, more than {cap} in one upsert "
            "(TAILWINDS_MAX_UPSERT_CHUNKS); send fewer documents, or a larger chunkSize"
        )
