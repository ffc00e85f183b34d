"""The response cache's price on a miss, timed in-process (`manage.py cache_bench`)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from bench.db import PYTHON, ROOT

GOAL_EXACT_P50_US = 2000.0  # an exact lookup that misses adds under 2 ms p50
GOAL_SEMANTIC_P50_US = 15000.0  # a semantic one (embedding on CPU, 10,000 entries) under 15 ms


def cache_timings(iterations: int) -> list[dict[str, Any]]:
    out = subprocess.run(
        [PYTHON, "manage.py", "cache_bench", "--json", "--iterations", str(iterations)],
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
        "embedding and the scan of a partition holding 10,000 questions.",
        "",
        "| scenario | p50 ms | p99 ms |",
        "|---|---:|---:|",
        *rows,
    ]
