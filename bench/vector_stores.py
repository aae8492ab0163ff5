"""Embedded vector stores, measured for the choice the retrieval issue asks for: insert
rate, query p50 and size on disk for 100,000 chunks of 384 dimensions (MiniLM's), top 10.

    pip install lancedb sqlite-vec apsw    # not Tailwinds' own dependencies
    .venv/bin/python -m bench.vector_stores [--chunks 100000]

Compared: sqlite-vec (through apsw: this Python's sqlite3 cannot load extensions),
LanceDB (flat search, no index), and what Tailwinds does today (the vectors as BLOBs in its
SQLite database, searched by one matrix product over an in-memory copy).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

DIM = 384
TOP_K = 10
QUERIES = 50


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def p50_ms(search: Callable[[np.ndarray], object], queries: np.ndarray) -> float:
    search(queries[0])  # warm
    times = []
    for q in queries:
        started = time.perf_counter()
        search(q)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def tailwinds_today(vectors: np.ndarray, queries: np.ndarray, folder: Path) -> dict[str, float]:
    db = folder / "t.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE chunks (id INTEGER PRIMARY KEY, content TEXT, embedding BLOB)")
    started = time.perf_counter()
    with conn:
        conn.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?)",
            ((i, f"chunk {i}", v.tobytes()) for i, v in enumerate(vectors)),
        )
    insert_s = time.perf_counter() - started
    started = time.perf_counter()
    rows = conn.execute("SELECT embedding FROM chunks ORDER BY id").fetchall()
    matrix = np.vstack([np.frombuffer(r[0], dtype="<f4") for r in rows])
    load_s = time.perf_counter() - started
    conn.close()

    def search(q: np.ndarray) -> object:
        scores = matrix @ q
        return np.argpartition(-scores, TOP_K)[:TOP_K]

    return {
        "insert_per_s": len(vectors) / insert_s,
        "query_p50_ms": p50_ms(search, queries),
        "mb_on_disk": dir_size(folder) / 1e6,
        "index_load_s": load_s,
    }


def sqlite_vec(vectors: np.ndarray, queries: np.ndarray, folder: Path) -> dict[str, float]:
    import apsw
    import sqlite_vec as sv

    conn = apsw.Connection(str(folder / "v.db"))
    conn.enable_load_extension(True)
    conn.load_extension(sv.loadable_path())
    conn.execute(f"CREATE VIRTUAL TABLE vec USING vec0(embedding float[{DIM}])")
    started = time.perf_counter()
    with conn:
        conn.executemany(
            "INSERT INTO vec(rowid, embedding) VALUES (?, ?)",
            ((i, v.tobytes()) for i, v in enumerate(vectors)),
        )
    insert_s = time.perf_counter() - started

    def search(q: np.ndarray) -> object:
        return conn.execute(
            "SELECT rowid, distance FROM vec WHERE embedding MATCH ? AND k = ?",
            (q.tobytes(), TOP_K),
        ).fetchall()

    result = {
        "insert_per_s": len(vectors) / insert_s,
        "query_p50_ms": p50_ms(search, queries),
        "mb_on_disk": dir_size(folder) / 1e6,
    }
    conn.close()
    return result


def lance(vectors: np.ndarray, queries: np.ndarray, folder: Path) -> dict[str, float]:
    import lancedb
    import pyarrow as pa

    db = lancedb.connect(str(folder / "lance"))
    started = time.perf_counter()
    batch = 10_000
    table = None
    for start in range(0, len(vectors), batch):
        part = vectors[start : start + batch]
        data = pa.table(
            {
                "id": pa.array(range(start, start + len(part)), pa.int64()),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(part.ravel()), DIM),
            }
        )
        if table is None:
            table = db.create_table("chunks", data)
        else:
            table.add(data)
    insert_s = time.perf_counter() - started
    assert table is not None

    def search(q: np.ndarray) -> object:
        return table.search(q).limit(TOP_K).to_arrow()

    return {
        "insert_per_s": len(vectors) / insert_s,
        "query_p50_ms": p50_ms(search, queries),
        "mb_on_disk": dir_size(folder / "lance") / 1e6,
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=100_000)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((args.chunks, DIM)).astype("<f4")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[rng.integers(0, args.chunks, QUERIES)]
    results = {}
    for name, run in (
        ("tailwinds today (SQLite BLOBs + numpy)", tailwinds_today),
        ("sqlite-vec 0.x (vec0, apsw)", sqlite_vec),
        ("LanceDB (flat)", lance),
    ):
        with tempfile.TemporaryDirectory() as folder:
            results[name] = run(vectors, queries, Path(folder))
        print(name, {k: round(v, 2) for k, v in results[name].items()}, flush=True)
    print(f"{args.chunks} chunks of {DIM} dimensions, top {TOP_K}, {os.cpu_count()} cores")
    return results


if __name__ == "__main__":
    main()
