"""`make soak` / `python scripts/soak.py [--minutes 10]`: does the gateway hold steady for minutes?

Starts the mock provider and one gateway process as `make bench` does (its own PostgreSQL
database, migrated and seeded), measures the maximum rate briefly (closed loop), then sends
evenly spaced requests at 70% of it for `--minutes`, sampling every 10 s the gateway's RSS
(/proc/PID/status), its open file descriptors (/proc/PID/fd) and the p50/p99 of the requests
sent in that interval. After a one-minute warm-up it checks:

- RSS grew less than 10% (first sample after warm-up to the last);
- open files and pipes are flat (median of the first three samples after warm-up against the
  last three, within a small tolerance), and sockets stay within the pools' bounds (the load
  generator's connections, GATEWAY_UPSTREAM_MAX_CONNECTIONS, the database pool): after a backlog
  both connection pools stay at the size it made them, which is not a leak;
- p99 drifted less than 20% (the last three intervals pooled against the first three after
  warm-up);
- every request was answered 200.

Prints a table, writes docs/reliability-soak.md (unless --no-docs) and exits 1 when a check
fails. Not part of `make test`: it takes the minutes it is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import uvloop  # noqa: E402

from bench import db  # noqa: E402
from bench.procs import Server, free_port  # noqa: E402
from bench.report import commit  # noqa: E402
from bench.stats import percentile  # noqa: E402

DOCS = ROOT / "docs" / "reliability-soak.md"
PYTHON = sys.executable
REQUEST_TIMEOUT_S = 25
CLIENT_CONNECTIONS = 256  # the load generator's pool, as bench/client.py's
# The gateway's own pools, besides the client connections: upstream (docs/config.md) and a margin
# for the database pool, Redis and the journal sweeper.
UPSTREAM_CONNECTIONS = int(os.environ.get("GATEWAY_UPSTREAM_MAX_CONNECTIONS", "512"))
OTHER_SOCKETS = 64


@dataclass
class Interval:
    """What was sent in one sampling interval, and the gateway's state at its end."""

    start_s: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    rss_kib: int = 0
    fds: int = 0
    sockets: int = 0

    @property
    def files(self) -> int:
        """Descriptors other than sockets: files, pipes, event fds."""
        return self.fds - self.sockets

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + self.errors

    def pct(self, p: float) -> float | None:
        return percentile(sorted(self.latencies_ms), p)


@dataclass
class Check:
    name: str
    first: str
    last: str
    change: str
    limit: str
    ok: bool


@dataclass
class Soak:
    max_rate: float
    rate: float
    minutes: float
    interval_s: float
    warmup_s: float
    intervals: list[Interval]
    checks: list[Check]
    rss_idle_kib: int

    @property
    def passed(self) -> bool:
        return all(check.ok for check in self.checks)


def _body() -> bytes:
    body = {
        "model": db.ROUTE,
        "messages": [{"role": "user", "content": "Say hello to the soak test in five words."}],
        "max_tokens": 16,
    }
    return json.dumps(body).encode()


def _proc(pid: int) -> tuple[int, int, int]:
    """(VmRSS in KiB, open file descriptors, of which sockets) of process `pid`."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    fds = sockets = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            sockets += os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:")
        except FileNotFoundError:  # closed while we looked
            continue
        fds += 1
    return rss, fds, sockets


def _session(connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    )


async def max_rate(url: str, headers: dict[str, str], seconds: float, connections: int) -> float:
    """Closed loop: `connections` clients back to back for `seconds`; 200 answers per second."""
    body, ok = _body(), 0
    async with _session(connections) as session:
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()

        async def client() -> None:
            nonlocal ok
            while time.perf_counter() < deadline:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    ok += response.status == 200

        await asyncio.gather(*(client() for _ in range(connections)))
        return ok / (time.perf_counter() - started)


async def soak(
    url: str, headers: dict[str, str], rate: float, duration_s: float, interval_s: float, pid: int
) -> list[Interval]:
    """Open loop at `rate` for `duration_s`; latency counts from each request's planned instant."""
    body = _body()
    count = int(duration_s / interval_s)
    intervals = [Interval(start_s=i * interval_s) for i in range(count)]

    async def one(session: aiohttp.ClientSession, due: float, slot: Interval) -> None:
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                slot.statuses[response.status] += 1
                slot.latencies_ms.append((time.perf_counter() - due) * 1000)
        except (aiohttp.ClientError, TimeoutError):
            slot.errors += 1

    async def sampler(start: float) -> None:
        for i, slot in enumerate(intervals):
            await asyncio.sleep(max(0.0, start + (i + 1) * interval_s - time.perf_counter()))
            slot.rss_kib, slot.fds, slot.sockets = _proc(pid)
            done = sum(s.sent for s in intervals[: i + 1])
            print(
                f"[{slot.start_s + interval_s:5.0f}s] rss {slot.rss_kib / 1024:6.1f} MiB, "
                f"fds {slot.fds} ({slot.sockets} sockets), answered so far {done}",
                file=sys.stderr,
                flush=True,
            )

    async with _session(CLIENT_CONNECTIONS) as session:
        start = time.perf_counter()
        watch = asyncio.create_task(sampler(start))
        tasks: set[asyncio.Task[None]] = set()
        total = int(count * interval_s * rate)
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            slot = intervals[min(int((due - start) // interval_s), count - 1)]
            task = asyncio.create_task(one(session, due, slot))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await watch
        await asyncio.gather(*tasks)
    return intervals


def _pooled(intervals: list[Interval], p: float) -> float | None:
    return percentile(sorted(x for i in intervals for x in i.latencies_ms), p)


def evaluate(
    intervals: list[Interval], warmup_s: float, fd_tolerance: int, window: int = 3
) -> list[Check]:
    steady = [i for i in intervals if i.start_s >= warmup_s]
    if len(steady) < 2 * window:
        raise SystemExit(f"too short: need {2 * window} intervals after the warm-up")
    first, last = steady[:window], steady[-window:]
    rss0, rss1 = steady[0].rss_kib, steady[-1].rss_kib
    rss_change = (rss1 - rss0) / rss0
    fd0 = int(statistics.median(i.files for i in first))
    fd1 = int(statistics.median(i.files for i in last))
    socket_bound = CLIENT_CONNECTIONS + UPSTREAM_CONNECTIONS + OTHER_SOCKETS
    most_sockets = max(i.sockets for i in steady)
    p0, p1 = _pooled(first, 99) or 0.0, _pooled(last, 99) or 0.0
    drift = (p1 - p0) / p0 if p0 else 0.0
    failed = sum(i.sent - i.statuses.get(200, 0) for i in intervals)
    sent = sum(i.sent for i in intervals)
    return [
        Check(
            "gateway RSS",
            f"{rss0 / 1024:.1f} MiB",
            f"{rss1 / 1024:.1f} MiB",
            f"{rss_change:+.1%}",
            "< +10%",
            rss_change < 0.10,
        ),
        Check(
            "open files and pipes (median of 3 samples)",
            str(fd0),
            str(fd1),
            f"{fd1 - fd0:+d}",
            f"± {fd_tolerance}",
            abs(fd1 - fd0) <= fd_tolerance,
        ),
        Check(
            "sockets (most seen)",
            str(steady[0].sockets),
            str(steady[-1].sockets),
            f"max {most_sockets}",
            f"<= {socket_bound}",
            most_sockets <= socket_bound,
        ),
        Check(
            "p99 latency (3 intervals pooled)",
            f"{p0:.1f} ms",
            f"{p1:.1f} ms",
            f"{drift:+.1%}",
            "< +20%",
            drift < 0.20,
        ),
        Check("answers other than 200", "", "", f"{failed} of {sent}", "0", failed == 0),
    ]


def _fell_behind(result: Soak) -> str:
    """A note when the rate was more than the machine sustained: then RSS, descriptors and p99
    grow with the queue of waiting requests, which is overload, not a leak."""
    warm = [i.pct(50) or 0.0 for i in result.intervals if i.start_s < result.warmup_s]
    steady = [i.pct(50) or 0.0 for i in result.intervals if i.start_s >= result.warmup_s]
    base = statistics.median(warm) if warm else 0.0
    worst = max(steady, default=0.0)
    if not base or worst < 10 * base or worst < 100:
        return ""
    return (
        f"Note: the gateway fell behind the offered rate (interval p50 up to {worst:.0f} ms against"
        f" {base:.1f} ms in the warm-up): requests queued, holding connections and memory. On a"
        " shared machine the maximum measured at the start may not hold; rerun with `--load 0.5`"
        " to tell a leak from overload."
    )


def render(result: Soak) -> str:
    lines = [
        "# Soak run",
        "",
        "_Generated by `make soak` (`python scripts/soak.py`); edits are overwritten on the next run._",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, commit {commit()}",
        "- One gateway process (one uvicorn worker) against the mock provider (0 ms latency),"
        " PostgreSQL audit on; load generator, mock and gateway share the machine.",
        f"- Maximum rate (closed loop, 32 connections): {result.max_rate:.0f} req/s; soak at"
        f" {result.rate:.0f} req/s (70%), evenly spaced, for {result.minutes:g} min;"
        f" samples every {result.interval_s:g} s; the first {result.warmup_s:g} s are warm-up.",
        f"- Gateway RSS when idle, before any load: {result.rss_idle_kib / 1024:.1f} MiB.",
        "",
        "## Checks (after the warm-up)",
        "",
        "| check | first | last | change | limit | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for c in result.checks:
        verdict = "met" if c.ok else "**failed**"
        lines.append(f"| {c.name} | {c.first} | {c.last} | {c.change} | {c.limit} | {verdict} |")
    if behind := _fell_behind(result):
        lines += ["", behind]
    lines += [
        "",
        "## Intervals",
        "",
        "| t (s) | sent | non-200 | p50 ms | p99 ms | RSS MiB | fds | of which sockets |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i in result.intervals:
        p50, p99 = i.pct(50), i.pct(99)
        warm = " (warm-up)" if i.start_s < result.warmup_s else ""
        lines.append(
            f"| {i.start_s:.0f}-{i.start_s + result.interval_s:.0f}{warm} | {i.sent} | "
            f"{i.sent - i.statuses.get(200, 0)} | {p50 or 0:.1f} | {p99 or 0:.1f} | "
            f"{i.rss_kib / 1024:.1f} | {i.fds} | {i.sockets} |"
        )
    return "\n".join(lines) + "\n"


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_BREAKER_")}
    env.update(
        DATABASE_URL=database_url,
        GATEWAY_LOG_LEVEL="WARNING",
        GATEWAY_DEBUG="false",
        PYTHONUNBUFFERED="1",
        GATEWAY_EGRESS_ALLOW_LOOPBACK="true",  # the mock listens on 127.0.0.1
        **extra,
    )
    return env


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python scripts/soak.py", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds per sample")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds not checked")
    parser.add_argument("--probe", type=float, default=10.0, help="seconds measuring max rate")
    parser.add_argument("--load", type=float, default=0.7, help="fraction of the max rate")
    parser.add_argument(
        "--fd-tolerance", type=int, default=4, help="allowed change of non-socket fds"
    )
    parser.add_argument("--no-docs", action="store_true", help=f"do not write {DOCS.name}")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "SOAK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gateway_soak"
        ),
        help="PostgreSQL database for the gateway (created if missing; env SOAK_DATABASE_URL)",
    )
    args = parser.parse_args(argv)
    if args.minutes * 60 < args.warmup + 6 * args.interval:
        parser.error("--minutes must leave six intervals after the warm-up")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="gateway-soak-"))
    key, quota_key = db.new_key(), db.new_key()
    mock_port, gateway_port = free_port(), free_port()
    env = _env(args.database_url, BENCH_KEY=key, BENCH_QUOTA_KEY=quota_key)
    if db.ensure_database(args.database_url):
        say(f"created database {args.database_url.rsplit('/', 1)[-1]}")
    say("migrating and seeding")
    db.manage(["migrate", "--verbosity", "0"], env)
    db.seed(workdir, mock_port, env)
    mock_argv = [PYTHON, "-m", "mock_provider", "--host", "127.0.0.1", "--port", str(mock_port)]
    gateway_argv = [
        PYTHON,
        "-m",
        "gateway_site.server",
        "--host",
        "127.0.0.1",
        "--port",
        str(gateway_port),
    ]
    mock = Server("mock", mock_argv, mock_port, workdir / "mock.log", env)
    gateway = Server("gateway", gateway_argv, gateway_port, workdir / "gateway.log", env)
    try:
        mock.wait_ready("/health")
        gateway.wait_ready("/healthz")
        rss_idle = _proc(gateway.pid)[0]
        url = f"http://127.0.0.1:{gateway_port}/v1/chat/completions"
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(max_rate(url, headers, 3.0, 4))  # warm the caches and pools
            say(f"measuring the maximum rate for {args.probe:g} s")
            top = runner.run(max_rate(url, headers, args.probe, 32))
            rate = top * args.load
            say(f"maximum {top:.0f} req/s; soaking at {rate:.0f} req/s for {args.minutes:g} min")
            intervals = runner.run(
                soak(url, headers, rate, args.minutes * 60, args.interval, gateway.pid)
            )
        gateway.check_alive()
    finally:
        gateway.stop()
        mock.stop()
    result = Soak(
        max_rate=top,
        rate=rate,
        minutes=args.minutes,
        interval_s=args.interval,
        warmup_s=args.warmup,
        intervals=intervals,
        checks=evaluate(intervals, args.warmup, args.fd_tolerance),
        rss_idle_kib=rss_idle,
    )
    text = render(result)
    print(text)
    if not args.no_docs:
        DOCS.write_text(text)
        say(f"wrote {DOCS.relative_to(ROOT)}")
    say(f"logs in {workdir}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
