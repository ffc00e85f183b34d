"""Side by side with LiteLLM's proxy (`make bench`; `make bench COMPARE=none` leaves it out).

LiteLLM's proxy is installed by `scripts/ensure_litellm.sh` into a throwaway virtualenv under
var/bench/ (one pinned release, never among the project's dependencies) and started against the
same mock provider as the gateway. Each server is started alone, measured, and stopped, with
one worker and then with two: the gateway, LiteLLM, the gateway, LiteLLM.

What each side has on:
- the gateway: key authentication, limits and budgets at every level (the bench's quota key,
  one Redis script per request), the write-ahead journal and the audit record committed to
  PostgreSQL before each answer;
- LiteLLM: its master key (authentication without a database). Virtual keys, their budgets and
  rate limits, and spend logs all need its PostgreSQL database (Prisma), so they stay off.
"""

from __future__ import annotations

import secrets
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench import db
from bench.hey import Target
from bench.procs import Server, ServerError, free_port
from bench.stats import RunResult, StreamResult, added

if TYPE_CHECKING:
    from bench.scenarios import Bench

ENSURE = db.ROOT / "scripts" / "ensure_litellm.sh"
WORKERS = (1, 2)
GATEWAY, LITELLM = "gateway", "LiteLLM"
# LiteLLM takes 10-35 s to start one worker on a two-core machine, and 40-100 s for two (the
# supervisor imports it too) when other work shares the machine.
STARTUP_TIMEOUT_S = 300.0
# uvicorn's supervisor kills a worker that misses a 5 s health ping; on a loaded machine a
# LiteLLM worker still importing can miss it and is restarted over and over. A start-up knob,
# not a feature: the gateway's two workers start within the default.
LITELLM_WORKER_HEALTHCHECK_S = 60

CONFIG_YAML = """\
# Written by `python -m bench`: LiteLLM's proxy in front of the bench's mock provider.
model_list:
  - model_name: {route}
    litellm_params:
      model: openai/{upstream_model}
      api_base: http://127.0.0.1:{mock_port}/v1
      api_key: mock-key
general_settings:
  master_key: {master_key}
litellm_settings:
  telemetry: false
"""


@dataclass
class Side:
    """One server (the gateway or LiteLLM) with a number of workers, and what it measured."""

    name: str
    workers: int
    startup_s: float = 0.0
    rss_idle_kib: int = 0
    rss_after_kib: int = 0
    processes: int = 0
    max_rate: RunResult | None = None  # hey, fixed concurrency
    max_streams: StreamResult | None = None  # streams for a time, fixed concurrency
    uniform: RunResult | None = None  # open loop, evenly spaced
    ttft: StreamResult | None = None  # the main bench's stream scenario
    error: str = ""  # why it has no figures

    def _runs(self) -> list[tuple[str, RunResult | StreamResult]]:
        named: list[tuple[str, RunResult | StreamResult | None]] = [
            ("max req/s", self.max_rate),
            ("max streams/s", self.max_streams),
            ("evenly spaced", self.uniform),
            ("time to first token", self.ttft),
        ]
        return [(name, run) for name, run in named if run is not None]

    @property
    def failed(self) -> int:
        total = 0
        for _, run in self._runs():
            total += run.non_200 + run.client_errors
            total += run.incomplete if isinstance(run, StreamResult) else 0
        return total

    def problems(self) -> list[str]:
        """What failed in which run: statuses other than 200, incomplete streams, and a few
        of the client's error messages (timeouts, resets)."""
        lines = []
        for name, run in self._runs():
            what = [
                f"{count}x HTTP {status}"
                for status, count in sorted(run.statuses.items())
                if status != 200 and count
            ]
            if isinstance(run, StreamResult) and run.incomplete:
                what.append(f"{run.incomplete} streams without `data: [DONE]`")
            what += run.error_samples[:2]
            if what:
                lines.append(f"{name}: " + "; ".join(what))
        return lines


@dataclass
class SideBySide:
    version: str
    command: str
    concurrency: int
    rate: float
    stream_concurrency: int
    load_before: str  # /proc/loadavg when the comparison started: was the machine shared?
    date: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    direct_uniform: RunResult | None = None
    direct_ttft: StreamResult | None = None
    sides: list[Side] = field(default_factory=list)
    unavailable: str = ""  # set when LiteLLM could not be installed or started

    def side(self, name: str, workers: int) -> Side | None:
        return next((s for s in self.sides if s.name == name and s.workers == workers), None)


def ensure_litellm() -> tuple[Path, str]:
    """The LiteLLM virtualenv's python (installed on first use) and LiteLLM's version."""
    done = subprocess.run(
        [str(ENSURE)], cwd=db.ROOT, capture_output=True, text=True, timeout=1800, check=False
    )
    if done.returncode != 0:
        raise ServerError(done.stderr.strip() or f"{ENSURE.name} exited {done.returncode}")
    python = db.ROOT / done.stdout.strip().splitlines()[-1]
    version = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    return python, version


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def compare(bench: Bench, mock_port: int) -> SideBySide:
    """Both servers, one and two workers each, through the same scenarios against one mock."""
    from bench.scenarios import _targets

    s = bench.settings
    result = SideBySide(
        version="",
        command=shlex.join(["python", "-m", "bench", *sys.argv[1:]]),
        concurrency=s.concurrency,
        rate=s.rate,
        stream_concurrency=s.stream_concurrency,
        load_before=_load(),
    )
    bench.say("LiteLLM side by side: making sure its virtualenv is installed")
    try:
        python, result.version = ensure_litellm()
    except (ServerError, OSError, subprocess.SubprocessError) as exc:
        result.unavailable = f"LiteLLM could not be installed: {exc}"
        bench.say(result.unavailable)
        return result
    bench.say(f"LiteLLM {result.version}: direct runs first")
    result.direct_uniform = bench.uniform_rate(_targets(mock_port, None))
    result.direct_ttft = bench.streaming(_targets(mock_port, None, stream=True))
    master_key = "sk-bench-" + secrets.token_hex(16)
    config = bench.workdir / "litellm.yaml"
    config.write_text(
        CONFIG_YAML.format(
            route=db.ROUTE,
            upstream_model=db.UPSTREAM_MODEL,
            mock_port=mock_port,
            master_key=master_key,
        )
    )
    for workers in WORKERS:
        for name in (GATEWAY, LITELLM):
            side = Side(name, workers)
            result.sides.append(side)
            starter = _gateway if name == GATEWAY else _litellm(python, config)
            key = bench.quota_key if name == GATEWAY else master_key
            try:
                with starter(bench, workers) as (server, port):
                    side.startup_s = server.startup_s
                    side.rss_idle_kib, side.processes = server.group_rss_kib()
                    _measure(bench, side, server, _side_targets(port, key, name))
            except ServerError as exc:
                side.error = str(exc).splitlines()[0]
                bench.say(f"{name} ({workers} workers) failed: {exc}")
    return result


@dataclass(frozen=True)
class _Targets:
    plain: Target
    stream: Target


def _side_targets(port: int, key: str, name: str) -> _Targets:
    from bench.scenarios import _targets

    # The gateway's quota key is under limits and budgets for every end user: name one.
    end_user = "bench-user" if name == GATEWAY else ""
    plain = _targets(port, key, end_user=end_user)
    stream = _targets(port, key, stream=True, end_user=end_user)
    return _Targets(plain, stream)


def _measure(bench: Bench, side: Side, server: _Started, targets: _Targets) -> None:
    s = bench.settings
    label = f"{side.name}, {side.workers} worker{'s' if side.workers > 1 else ''}"
    bench.say(f"side by side: {label} up in {side.startup_s:.1f} s; warming it up")
    bench.warm(targets.plain, s.warmup_requests)
    bench.warm(targets.stream, 40)
    bench.say(f"side by side: {label}, {s.concurrency} connections")
    bench.warm(targets.plain, s.rewarm_requests)
    side.max_rate = bench.fixed_concurrency(targets.plain)
    bench.say(f"side by side: {label}, streams at {s.concurrency} connections")
    side.max_streams = _timed_streams(bench, targets.stream)
    bench.say(f"side by side: {label}, {s.rate:g} evenly spaced req/s")
    bench.warm(targets.plain, s.rewarm_requests)
    side.uniform = bench.uniform_rate(targets.plain)
    bench.say(f"side by side: {label}, time to first token")
    side.ttft = bench.streaming(targets.stream)
    server.server.check_alive()
    side.rss_after_kib, side.processes = server.group_rss_kib()


def _timed_streams(bench: Bench, target: Target) -> StreamResult:
    from bench import client

    s = bench.settings
    return client.stream(target, concurrency=s.concurrency, duration_s=s.duration_s)


@dataclass
class _Started:
    server: Server
    startup_s: float

    def group_rss_kib(self) -> tuple[int, int]:
        return self.server.group_rss_kib()


@contextmanager
def _started(
    name: str, argv: list[str], port: int, bench: Bench, env: dict[str, str], ready: str
) -> Iterator[tuple[_Started, int]]:
    server = Server(name, argv, port, bench.workdir / f"{name}.log", env, cwd=bench.workdir)
    try:
        startup_s = server.wait_ready(ready, timeout_s=STARTUP_TIMEOUT_S)
        yield _Started(server, startup_s), port
    finally:
        server.stop()


@contextmanager
def _gateway(bench: Bench, workers: int) -> Iterator[tuple[_Started, int]]:
    from bench.scenarios import _env, _gateway_argv

    port = free_port()
    argv = [*_gateway_argv(port), "--workers", str(workers)]
    with _started(
        f"side-gateway-{workers}w", argv, port, bench, _env(bench.settings), "/healthz"
    ) as started:
        yield started


def _litellm(
    python: Path, config: Path
) -> Callable[[Bench, int], AbstractContextManager[tuple[_Started, int]]]:
    @contextmanager
    def start(bench: Bench, workers: int) -> Iterator[tuple[_Started, int]]:
        from bench.scenarios import _env

        port = free_port()
        argv = [
            str(python.parent / "litellm"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            str(workers),
        ]
        if workers > 1:
            argv += ["--timeout_worker_healthcheck", str(LITELLM_WORKER_HEALTHCHECK_S)]
        env = _env(
            bench.settings,
            LITELLM_LOG="WARNING",  # no access log, as the gateway
            # Its bundled price list: at start-up it would otherwise fetch one from the
            # internet (as the gateway, which ships its prices, does not), retrying when offline.
            LITELLM_LOCAL_MODEL_COST_MAP="True",
        )
        for name in ("DATABASE_URL", "REDIS_URL"):  # LiteLLM reads both: none on its side
            env.pop(name, None)
        with _started(
            f"side-litellm-{workers}w", argv, port, bench, env, "/health/liveliness"
        ) as started:
            yield started

    return start


# --- the table ------------------------------------------------------------------------------------
def ratio(ours: float | None, theirs: float | None) -> str:
    """This gateway's figure over LiteLLM's, e.g. `4.10x`; n/a when either is missing or not
    positive (an added latency at or below zero has no meaningful ratio)."""
    if ours is None or theirs is None or ours <= 0 or theirs <= 0:
        return "n/a"
    return f"{ours / theirs:.2f}x"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f} ms"


def _per_s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB" if kib else "n/a"


_Figure = tuple[str, Callable[[Side], float | None], Callable[[float | None], str]]


def _figures(result: SideBySide) -> list[_Figure]:
    direct_u, direct_t = result.direct_uniform, result.direct_ttft

    def added_uniform(pct: str) -> Callable[[Side], float | None]:
        def measure(side: Side) -> float | None:
            if side.uniform is None or direct_u is None:
                return None
            return added(getattr(side.uniform, pct), getattr(direct_u, pct))

        return measure

    def added_ttft(side: Side) -> float | None:
        if side.ttft is None or direct_t is None:
            return None
        return added(side.ttft.ttft_p50_ms, direct_t.ttft_p50_ms)

    c, rate = result.concurrency, result.rate
    return [
        (
            f"max req/s at {c} connections (non-streaming)",
            lambda s: s.max_rate.rps if s.max_rate else None,
            _per_s,
        ),
        (
            f"max streams/s at {c} connections",
            lambda s: s.max_streams.streams_per_s if s.max_streams else None,
            _per_s,
        ),
        (f"added p50 at {rate:g} evenly spaced req/s", added_uniform("p50_ms"), _ms),
        (f"added p99 at {rate:g} evenly spaced req/s", added_uniform("p99_ms"), _ms),
        (
            f"time to first token added, p50 ({result.stream_concurrency} connections)",
            added_ttft,
            _ms,
        ),
        (
            "RSS idle, all processes",
            lambda s: s.rss_idle_kib or None,
            lambda v: _mib(int(v or 0)),
        ),
        (
            "RSS after load, all processes",
            lambda s: s.rss_after_kib or None,
            lambda v: _mib(int(v or 0)),
        ),
        (
            "start-up (to the first 200 on its health path)",
            lambda s: s.startup_s or None,
            lambda v: "n/a" if v is None else f"{v:.1f} s",
        ),
    ]


def header(result: SideBySide) -> list[str]:
    cells = ["figure"]
    for workers in WORKERS:
        w = f"{workers} worker{'s' if workers > 1 else ''}"
        cells += [f"gateway, {w}", f"LiteLLM, {w}", "gateway / LiteLLM"]
    return cells


def rows(result: SideBySide) -> list[list[str]]:
    """One row per figure; per worker count the gateway's, LiteLLM's and their ratio. A side
    whose max req/s is below the evenly spaced rate is marked: its latencies there are queueing."""
    table = []
    for label, measure, show in _figures(result):
        row = [label]
        for workers in WORKERS:
            ours, theirs = result.side(GATEWAY, workers), result.side(LITELLM, workers)
            a = measure(ours) if ours and not ours.error else None
            b = measure(theirs) if theirs and not theirs.error else None
            cells = [show(a), show(b)]
            if "evenly spaced" in label:
                cells = [
                    c + _saturated(s, result.rate)
                    for c, s in zip(cells, (ours, theirs), strict=True)
                ]
            row += [*cells, ratio(a, b)]
        table.append(row)
    row = ["failed requests (non-200, no answer, incomplete stream)"]
    for workers in WORKERS:
        pair = (result.side(GATEWAY, workers), result.side(LITELLM, workers))
        row += [("n/a" if s is None or s.error else str(s.failed)) for s in pair] + [""]
    table.append(row)
    return table


def _saturated(side: Side | None, rate: float) -> str:
    if side is None or side.max_rate is None or not side.max_rate.rps:
        return ""
    return " (over its max)" if side.max_rate.rps < rate else ""


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.litellm`: only the side by side with LiteLLM, printed as a table."""
    import argparse
    import os
    import tempfile

    from bench.report import commit, litellm_section
    from bench.scenarios import Bench, Settings, _env, _mock_argv, _server

    parser = argparse.ArgumentParser(prog="python -m bench.litellm", description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0, metavar="S")
    args = parser.parse_args(argv)
    database_url = os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gateway_bench"
    )
    settings = Settings(duration_s=args.duration, database_url=database_url, compare="litellm")
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        bench = Bench(settings, Path(tmp))
        mock_port = free_port()
        bench.prepare(mock_port, free_port(), free_port())
        argv_ = _mock_argv(mock_port)
        with _server("mock", argv_, mock_port, bench.workdir, _env(settings), "/v1/models"):
            bench.warm(_targets_direct(mock_port), settings.warmup_requests)
            result = compare(bench, mock_port)
    result.command = shlex.join(["python", "-m", "bench.litellm", *(argv or sys.argv[1:])])
    print("\n".join(litellm_section(result, commit())))
    gateway_failed = sum(s.failed for s in result.sides if s.name == GATEWAY)
    return 1 if result.unavailable or gateway_failed else 0


def _targets_direct(mock_port: int) -> Target:
    from bench.scenarios import _targets

    return _targets(mock_port, None)


if __name__ == "__main__":
    raise SystemExit(main())
