"""One row of the benchmark, run alternately against two checkouts: the before-and-after
pairs of a change, measured in the same minutes (this machine moves by 10-30 % between
runs of the same code, so a change is judged on pairs, never on two separate runs).

    git worktree add /tmp/before <commit>
    .venv/bin/python -m bench.alternate --before /tmp/before --pairs 4 --queue

Each side of a pair runs the row in queue mode (with `--queue`) and then in local mode,
and prints CPU µs per token and the ratio. The "before" side's processes import Tailwinds
from `<before>/src` (PYTHONPATH comes ahead of the editable install); the harness itself
is this checkout's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.load import Report, run_load
from bench.processes import Processes, queue_mode
from bench.run import prediction_load


async def measure(procs: Processes, streams: int, tokens: int, pace_ms: int, rounds: int) -> Report:
    load = await prediction_load(procs, streams, tokens, pace_ms)
    await run_load(**load)  # warm-up
    return await run_load(**load, rounds=rounds)


@contextmanager
def source(src: Path | None) -> Iterator[None]:
    """Tailwinds' processes started inside import it from `src` (None: this checkout)."""
    saved = os.environ.get("PYTHONPATH")
    if src is not None:
        os.environ["PYTHONPATH"] = str(src)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def run_side(args: argparse.Namespace, src: Path | None) -> tuple[Report | None, Report]:
    """(queue mode's report or None, local mode's) for one side of a pair."""
    row = (args.streams, args.tokens, args.pace_ms, args.rounds)
    queued = None
    with source(src), tempfile.TemporaryDirectory() as home:
        if args.queue:
            with queue_mode() as queue_env:
                procs = Processes(Path(home), queue_env)
                try:
                    queued = asyncio.run(measure(procs, *row))
                finally:
                    procs.stop()
        procs = Processes(Path(home))
        try:
            local = asyncio.run(measure(procs, *row))
        finally:
            procs.stop()
    return queued, local


def main(argv: list[str] | None = None) -> dict[str, list[tuple[Report | None, Report]]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", type=Path, required=True, help="the other checkout")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--pace-ms", type=int, default=20, help="0: unpaced")
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--queue", action="store_true", help="queue mode, then local mode")
    args = parser.parse_args(argv)
    sides: dict[str, list[tuple[Report | None, Report]]] = {"before": [], "after": []}
    for pair in range(1, args.pairs + 1):
        for side, src in (("before", args.before / "src"), ("after", None)):
            queued, local = run_side(args, src)
            sides[side].append((queued, local))
            figures = f"local {local.cpu_us_per_token:.1f} µs/token"
            if queued is not None:
                # a row of a few tokens can read no CPU at all (the counters' resolution)
                ratio = queued.cpu_us_per_token / (local.cpu_us_per_token or float("nan"))
                figures = f"queue {queued.cpu_us_per_token:.1f} ({figures}), {ratio:.2f}x"
            print(f"pair {pair} {side}: {figures}", flush=True)
    for side, runs in sides.items():
        chosen = [q if q is not None else loc for q, loc in runs]
        median = statistics.median(r.cpu_us_per_token for r in chosen)
        print(f"{side}: median {median:.1f} µs/token", flush=True)
    return sides


if __name__ == "__main__":
    main()
