"""Drive `hey` and read its text summary (latencies, req/s, status codes, client errors)."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from dataclasses import dataclass

from bench.stats import RunResult

# hey's per-request client timeout. A little above the gateway's 10 s database-pool timeout,
# so a request stuck behind the pool is seen answering (or failing) rather than cut off.
REQUEST_TIMEOUT_S = 25

_TOTAL = re.compile(r"^\s*Total:\s+([\d.]+) secs", re.M)
_SLOWEST = re.compile(r"^\s*Slowest:\s+([\d.]+) secs", re.M)
_PCT = re.compile(r"^\s*(\d+)% in ([\d.]+) secs", re.M)
_STATUS = re.compile(r"^\s*\[(\d{3})\]\s+(\d+) responses", re.M)
_ERROR = re.compile(r"^\s*\[(\d+)\]\s+(.+)$")


@dataclass(frozen=True)
class Target:
    """Where and what to POST: the same request body, direct or through the gateway."""

    label: str
    url: str
    body: str
    headers: tuple[tuple[str, str], ...] = ()


def run(
    target: Target,
    *,
    concurrency: int,
    duration_s: float | None = None,
    requests: int | None = None,
    qps_per_worker: float | None = None,
) -> RunResult:
    """One hey run: for `duration_s` seconds, or `requests` requests (warm-ups)."""
    argv = ["hey", "-c", str(concurrency), "-t", str(REQUEST_TIMEOUT_S), "-m", "POST"]
    argv += ["-T", "application/json", "-d", target.body]
    for name, value in target.headers:
        argv += ["-H", f"{name}: {value}"]
    if duration_s is not None:
        argv += ["-z", f"{duration_s:g}s"]
    else:
        argv += ["-n", str(requests or concurrency)]
    if qps_per_worker:
        argv += ["-q", f"{qps_per_worker:g}"]
    argv.append(target.url)
    # hey stops sending at -z but lets requests in flight finish (bounded by -t).
    budget = (duration_s or 60) + REQUEST_TIMEOUT_S + 30
    done = subprocess.run(argv, capture_output=True, text=True, timeout=budget, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"hey failed ({done.returncode}): {done.stderr.strip()}")
    return parse(target.label, done.stdout)


def parse(label: str, text: str) -> RunResult:
    statuses: Counter[int] = Counter()
    for code, count in _STATUS.findall(text):
        statuses[int(code)] += int(count)
    percentiles = {int(p): float(secs) * 1000 for p, secs in _PCT.findall(text) if p != "0"}
    slowest = _SLOWEST.search(text)
    if 99 not in percentiles and slowest and statuses:
        # hey leaves out a percentile it has too few samples for (p99 under 100 requests);
        # by the nearest-rank definition it is then the slowest request.
        percentiles[99] = float(slowest.group(1)) * 1000
    errors, samples = _errors(text)
    total = _TOTAL.search(text)
    duration = float(total.group(1)) if total else 0.0
    return RunResult(
        label=label,
        duration_s=duration,
        statuses=statuses,
        client_errors=errors,
        error_samples=samples,
        p50_ms=percentiles.get(50),
        p99_ms=percentiles.get(99),
        # hey's own Requests/sec counts failures too; throughput here is 200 answers per second.
        rps=statuses.get(200, 0) / duration if duration else 0.0,
    )


def _errors(text: str) -> tuple[int, list[str]]:
    """The 'Error distribution' block: `[count]  message` lines."""
    _, found, block = text.partition("Error distribution:")
    if not found:
        return 0, []
    count, samples = 0, []
    for line in block.splitlines():
        match = _ERROR.match(line)
        if match:
            count += int(match.group(1))
            samples.append(f"{match.group(1)}x {match.group(2).strip()}")
    return count, samples
