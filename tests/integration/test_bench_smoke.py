"""The benchmark harness itself, on a few streams: the report's fields are filled and
plausible. Not a timed assertion: the figures are the harness's business."""

from __future__ import annotations

import math
from pathlib import Path

from bench.alternate import main as alternate
from bench.run import main


def test_quick_bench_reports_plausible_figures(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    # the fixtures make sure PostgreSQL and Redis are there for the queue-mode rows
    out = tmp_path / "RESULTS.md"
    rows = main(["--streams", "1", "4", "--tokens", "8", "--queue", "--out", str(out)])
    # per mode: 2 concurrencies x (paced, unpaced), then one paced row per dialect
    assert len(rows) == 14
    for server, floor in rows:
        for report in (server, floor):
            assert report.completed == report.streams * report.rounds, report.errors
            assert report.failed == 0
            assert report.tokens == report.completed * report.tokens_per_stream
            assert report.delay_p50_ms >= 0 and report.delay_p99_ms >= report.delay_p50_ms
            assert report.delay_max_ms >= report.delay_p99_ms
            assert 0 < report.ttft_p50_ms <= report.ttft_p99_ms
            assert report.tokens_per_s > 0
            assert not math.isnan(report.cpu_us_per_token) and report.cpu_us_per_token >= 0
        assert floor.rss_kb_per_stream >= 0
        assert floor.target == "mock"
    # memory per stream: for the rows that open more streams than the server held before
    memory = [server.rss_kb_per_stream for server, _ in rows]
    assert all(m >= 0 for m in memory[0:2] + memory[7:9])
    assert all(math.isnan(m) for m in memory[2:7] + memory[9:14])
    dialects = ["openai", "agui", "ai-sdk"]
    assert [server.target for server, _ in rows] == [
        *["tailwinds-local"] * 4,
        *[f"tailwinds-local {d}" for d in dialects],
        *["tailwinds-queue"] * 4,
        *[f"tailwinds-queue {d}" for d in dialects],
    ]
    # the dialect rows: the largest paced load, beside the native row
    assert all(server.streams == 4 and server.interval_ms for server, _ in rows[4:7])
    text = out.read_text()
    assert text.startswith("# Benchmark results")
    streams_part, fixed_part = text.split("## The fixed cost of a prediction")
    table_rows = [line for line in streams_part.splitlines() if line[:7] in ("| local", "| queue")]
    assert len(table_rows) == len(rows)
    # the fixed cost: 4- and 64-token answers, without and with a chat id, per mode
    fixed_rows = [line for line in fixed_part.splitlines() if line[:7] in ("| local", "| queue")]
    assert len(fixed_rows) == 8
    assert out.with_suffix(".json").exists()


def test_alternate_runs_pairs_against_another_checkout(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    # this checkout stands for "before" too: what is checked is the pairing, not a change
    before = Path(__file__).resolve().parents[2]
    args = ["--before", str(before), "--pairs", "1", "--streams", "2", "--tokens", "4"]
    sides = alternate([*args, "--rounds", "2", "--queue"])
    for runs in sides.values():
        [(queued, local)] = runs
        for report in (queued, local):
            assert report is not None
            assert report.completed == 4 and report.failed == 0, report.errors
            assert report.tokens == 16 and report.cpu_us_per_token >= 0
    assert sides["after"][0][0].target == "tailwinds-queue"  # type: ignore[union-attr]
