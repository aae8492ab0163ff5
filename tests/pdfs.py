"""PDFs made for tests: a page of text, and a few KB whose pages share one compressed
content stream of hundreds of thousands of text operators (seconds to minutes of pypdf)."""

from __future__ import annotations

import zlib


def pdf_of(content: bytes, pages: int = 1, compress: bool = False) -> bytes:
    stream = zlib.compress(content, 9) if compress else content
    filters = b" /Filter /FlateDecode" if compress else b""
    kids = " ".join(f"{5 + i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d%s >>\nstream\n" % (len(stream), filters) + stream + b"\nendstream",
    ] + [
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
    ] * pages
    pdf, offsets = b"%PDF-1.4\n", []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return pdf


def text_pdf(text: str) -> bytes:
    return pdf_of(b"BT /F1 12 Tf 72 712 Td (" + text.encode() + b") Tj ET")


def slow_pdf(operators: int = 200_000, pages: int = 2) -> bytes:
    """~3 KB that keeps pypdf busy far longer than any test's time limit."""
    return pdf_of(b"BT /F1 12 Tf 72 712 Td " + b"(a) Tj " * operators + b"ET", pages, True)
