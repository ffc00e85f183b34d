"""The response cache's price on a miss, timed in-process (`manage.py cache_bench`).

Alone, on a loaded machine: `python -m bench.cache_cost --runs 3` runs the timing three times
and prints each run and the median of their p50s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.db import PYTHON, ROOT

GOAL_EXACT_P50_US = 2000.0  # an exact lookup that misses adds under 2 ms p50
GOAL_SEMANTIC_P50_US = 15000.0  # a semantic one (embedding on CPU, 100,000 entries) under 15 ms
ENTRIES = 100_000  # questions in the one partition the semantic lookups search


def cache_timings(iterations: int, entries: int = ENTRIES) -> list[dict[str, Any]]:
    python = PYTHON if Path(PYTHON).exists() else sys.executable
    command = ["manage.py", "cache_bench", "--json", "--iterations", str(iterations)]
    out = subprocess.run(
        [python, *command, "--entries", str(entries)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    timings: list[dict[str, Any]] = json.loads(out.strip().splitlines()[-1])
    return timings


def _row(timings: list[dict[str, Any]], kind: str, goal_us: float) -> list[str]:
    found = [t for t in timings if t["scenario"].startswith(kind)]
    p50 = found[0]["p50_us"] if found else None
    verdict = "no data" if p50 is None else ("met" if p50 < goal_us else "**missed**")
    return [
        f"response cache: {kind} lookup that misses",
        f"< {goal_us / 1000:g} ms p50",
        f"{p50 / 1000:.2f} ms" if p50 is not None else "n/a",
        verdict,
    ]


def goal_rows(timings: list[dict[str, Any]]) -> list[list[str]]:
    return [
        _row(timings, "exact", GOAL_EXACT_P50_US),
        _row(timings, "semantic", GOAL_SEMANTIC_P50_US),
    ]


def section(timings: list[dict[str, Any]]) -> list[str]:
    rows = [
        f"| {t['scenario']} | {t['p50_us'] / 1000:.2f} | {t['p99_us'] / 1000:.2f} |"
        for t in timings
    ]
    return [
        "## 9. Response cache: a lookup that misses",
        "",
        "What a request on a caching route pays when nothing is cached for it, timed in-process "
        "(`manage.py cache_bench`): the keys, the Redis read, and for semantic routes the "
        "embedding and the search of a partition holding 100,000 questions (its approximate index "
        "built first, as a worker does in the background).",
        "",
        "| scenario | p50 ms | p99 ms |",
        "|---|---:|---:|",
        *rows,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--entries", type=int, default=ENTRIES)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for run in range(args.runs):
        timings = cache_timings(args.iterations, args.entries)
        runs.append(timings)
        for t in timings:
            build = f", index built in {t['index_build_s']} s" if "index_build_s" in t else ""
            print(
                f"run {run + 1}: {t['scenario']}: p50 {t['p50_us'] / 1000:.2f} ms, "
                f"p99 {t['p99_us'] / 1000:.2f} ms{build}",
                flush=True,
            )
    for position, first in enumerate(runs[0]):
        p50s = [r[position]["p50_us"] / 1000 for r in runs]
        print(
            f"median of {len(runs)} runs: {first['scenario']}: p50 {statistics.median(p50s):.2f} ms"
        )


if __name__ == "__main__":
    main()
