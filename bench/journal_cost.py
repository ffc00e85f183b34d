"""The write-ahead journal's share of the hot path, timed in-process (`manage.py journal_bench`).

Paced like requests (100 a second evenly, and bursts of 32) on the journal's real disk, beside a
baseline that paces the same loop without a write: the difference is what the step adds.
"""

from __future__ import annotations

import json
import os
from typing import Any

from bench.db import manage

GOAL_JOURNAL_P50_US = 500.0  # the write-ahead step adds under 0.5 ms p50 at 100 req/s


def journal_timings(seconds: float) -> list[dict[str, Any]]:
    out = manage(["journal_bench", "--json", "--seconds", str(seconds)], os.environ)
    timings: list[dict[str, Any]] = json.loads(out.strip().splitlines()[-1])
    return timings


def _added_p50(timings: list[dict[str, Any]], label: str) -> float | None:
    by = {t["scenario"]: t for t in timings}
    step, base = by.get(f"journal, {label}"), by.get(f"baseline, {label}")
    return None if step is None or base is None else step["p50_us"] - base["p50_us"]


def goal_row(timings: list[dict[str, Any]]) -> list[str]:
    added = _added_p50(timings, "100 req/s evenly")
    verdict = (
        "no data" if added is None else ("met" if added < GOAL_JOURNAL_P50_US else "**missed**")
    )
    measured = "n/a" if added is None else f"+{added / 1000:.3f} ms"
    return ["write-ahead step p50 at 100 req/s", "< +0.5 ms", measured, verdict]


def section(timings: list[dict[str, Any]]) -> list[str]:
    rows = [
        f"| {t['scenario']} | {t['samples']} | {t['p50_us']:.1f} | {t['p99_us']:.1f} |"
        for t in timings
    ]
    return [
        "## 8. Write-ahead journal on the hot path",
        "",
        "`Journal.begin` (one line with a 1.5 KB body, fsynced with the lines that arrive meanwhile) "
        "paced like requests on the journal's own disk, beside a baseline of the same loop "
        "without the write (`manage.py journal_bench`; docs/adr/0010-write-ahead-journal.md).",
        "",
        "| scenario | samples | p50 µs | p99 µs |",
        "|---|---:|---:|---:|",
        *rows,
    ]
