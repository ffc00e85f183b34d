"""The bench itself: start the mock and the gateway, run every scenario, check the audit trail."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench import client, db, failover, hey, litellm
from bench.baseline import Comparison, compare
from bench.cache_cost import cache_timings
from bench.hey import Target
from bench.journal_cost import journal_timings
from bench.procs import Server, free_port
from bench.prompt_cost import prompt_timings
from bench.stats import RunResult, StreamResult

VENV_BIN = db.ROOT / ".venv" / "bin"
TRANSPORTS = ("aiohttp", "httpx")  # the first one is the gateway's default
_R = TypeVar("_R", RunResult, StreamResult)


@dataclass(frozen=True)
class Settings:
    duration_s: float  # each timed hey / open-loop run
    quick: bool = False
    concurrency: int = 32  # scenario 1 and 4
    rate_workers: int = 10  # scenario 2: workers x qps each = 100 req/s
    rate_qps_per_worker: float = 10.0
    stream_concurrency: int = 4
    stream_requests: int = 300
    warmup_requests: int = 300  # per server, at low concurrency
    rewarm_requests: int = 60  # just before each timed gateway run (see `_rewarm`)
    burst_connections: int = 32  # the cold-burst check (see `cold_burst`)
    burst_requests: int = 64
    database_url: str = "postgres://postgres@127.0.0.1:5432/gateway_bench"
    baseline: str = ""  # a git ref to run side by side with this tree (bench/baseline.py)
    compare: str = ""  # "litellm": the side-by-side with LiteLLM's proxy (bench/litellm.py)

    @property
    def rate(self) -> float:
        return self.rate_workers * self.rate_qps_per_worker


@dataclass
class GatewayRun:
    """One gateway process: its memory, what it answered, and what it audited and logged."""

    transport: str
    startup_s: float = 0.0
    rss_idle_kib: int = 0
    rss_after_kib: int = 0
    peak_kib: int = 0
    answered: int = 0  # HTTP answers of any status, warm-ups included
    ok: int = 0
    client_errors: int = 0
    audit_added: int = 0
    audit_by_status: Counter[str] = field(default_factory=Counter)
    log_errors: list[tuple[int, str]] = field(default_factory=list)

    def count(self, result: RunResult | StreamResult) -> None:
        self.answered += result.answered
        self.ok += result.ok
        self.client_errors += result.client_errors

    @property
    def audit_matches(self) -> bool:
        return self.audit_added == self.answered


@dataclass
class Results:
    settings: Settings
    fixed_concurrency: dict[str, RunResult] = field(default_factory=dict)  # direct, gateway
    fixed_rate: dict[str, RunResult] = field(default_factory=dict)
    uniform_rate: dict[str, RunResult] = field(default_factory=dict)
    # The same uniform rate through the gateway: a key with no rules vs one under every level.
    quota_rate: dict[str, RunResult] = field(default_factory=dict)
    streaming: dict[str, StreamResult] = field(default_factory=dict)
    # One request at a time (1b), and as many streams as `concurrency` connections take (3b).
    serial: dict[str, RunResult] = field(default_factory=dict)
    stream_throughput: dict[str, StreamResult] = field(default_factory=dict)
    # Scenario 1 per transport (aiohttp, httpx), each with the direct run just before it.
    transports: dict[str, dict[str, RunResult]] = field(default_factory=dict)
    cold_burst: RunResult | None = None
    failover: list[failover.FailoverRun] = field(default_factory=list)  # scenario 6
    prompt_costs: list[dict[str, Any]] = field(default_factory=list)  # bench/prompt_cost.py
    journal_costs: list[dict[str, Any]] = field(default_factory=list)  # bench/journal_cost.py
    cache_costs: list[dict[str, Any]] = field(default_factory=list)  # bench/cache_cost.py
    gateways: list[GatewayRun] = field(default_factory=list)
    setup_s: float = 0.0
    baseline: Comparison | None = None  # `--baseline REF`: this tree beside an earlier commit
    litellm: litellm.SideBySide | None = None  # `--compare litellm`


class Progress:
    """Timestamped progress lines on stderr, so stdout holds only the final tables."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.start:6.1f}s] {message}", file=sys.stderr, flush=True)


def _body(model: str, stream: bool) -> str:
    # A small prompt and a short answer: the bench measures the proxy, not the payload.
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello to the benchmark in five words."}],
        "max_tokens": 16,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body)


def _targets(port: int, key: str | None, stream: bool = False, end_user: str = "") -> Target:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    if key is None:
        return Target("mock direct", url, _body(db.UPSTREAM_MODEL, stream))
    headers = [("Authorization", f"Bearer {key}")]
    if end_user:
        headers.append(("x-gateway-end-user", end_user))
    return Target("via gateway", url, _body(db.ROUTE, stream), tuple(headers))


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    # Scenario 6 measures the default breaker unless told otherwise, whatever the shell says.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_BREAKER_")}
    env.update(
        DATABASE_URL=settings.database_url,
        GATEWAY_LOG_LEVEL="WARNING",
        GATEWAY_DEBUG="false",  # measure the production code path even if the shell says debug
        PYTHONUNBUFFERED="1",
        GATEWAY_EGRESS_ALLOW_LOOPBACK="true",  # the mock providers listen on 127.0.0.1
    )
    env.update(extra)
    return env


_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ (ERROR|CRITICAL) (\S+) (.*)$")
_EXC_LINE = re.compile(r"^([\w.]+(?:Error|Exception|Timeout|Exit))(?::\s*(.*))?$")
_IDS = re.compile(r"\breq_[0-9a-f]+\b")


def log_digest(text: str) -> list[tuple[int, str]]:
    """ERROR/CRITICAL log lines and exception lines, deduplicated, most frequent first."""
    seen: Counter[str] = Counter()
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            seen[_IDS.sub("req_…", f"{match.group(1)} {match.group(2)}: {match.group(3)}")] += 1
            continue
        match = _EXC_LINE.match(line)
        if match:
            seen[f"{match.group(1)}: {match.group(2) or ''}".strip()] += 1
    return [(count, message) for message, count in seen.most_common()]


@contextmanager
def _server(
    name: str,
    argv: list[str],
    port: int,
    logdir: Path,
    env: dict[str, str],
    ready_path: str,
    cwd: Path | None = None,
) -> Iterator[tuple[Server, float]]:
    server = Server(name, argv, port, logdir / f"{name}.log", env, cwd=cwd)
    try:
        yield server, server.wait_ready(ready_path)
    finally:
        server.stop()


def _mock_argv(port: int, *extra: str) -> list[str]:
    return [
        str(VENV_BIN / "python"),
        "-m",
        "mock_provider",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *(extra or ("--latency-ms", "0")),
    ]


def _gateway_argv(port: int) -> list[str]:
    return [
        str(VENV_BIN / "python"),
        "-m",
        "gateway_site.server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


class Bench:
    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.results = Results(settings)
        self.say = Progress()
        self.key = db.new_key()
        self.quota_key = db.new_key()

    # --- set-up -------------------------------------------------------------------------------
    def prepare(self, mock_port: int, limited_port: int, secondary_port: int) -> None:
        start = time.monotonic()
        if db.ensure_database(self.settings.database_url):
            self.say("created database gateway_bench")
        self.say("migrating and seeding the bench database")
        env = _env(self.settings, BENCH_KEY=self.key, BENCH_QUOTA_KEY=self.quota_key)
        db.manage(["migrate", "--verbosity", "0"], env)
        db.seed(self.workdir, mock_port, env)
        failover.seed(self.workdir, limited_port, secondary_port, env)
        self.results.setup_s = time.monotonic() - start

    # --- load ---------------------------------------------------------------------------------
    def warm(self, target: Target, requests: int) -> RunResult:
        return hey.run(target, concurrency=4, requests=requests)

    def _rewarm(self, gateway: Target, run: GatewayRun) -> None:
        # The gateway caches a key for 1 s (GATEWAY_KEY_CACHE_SECONDS). After the direct run
        # it has idled longer than that, so refill the cache at low concurrency: the timed run
        # then starts from steady state rather than from a burst of simultaneous cache misses.
        run.count(self.warm(gateway, self.settings.rewarm_requests))

    def pair(
        self,
        what: str,
        direct: Target,
        gateway: Target,
        run: GatewayRun,
        measure: Callable[[Target], _R],
    ) -> dict[str, _R]:
        """The same measurement direct, then through the gateway (re-warmed)."""
        self.say(f"{what}: mock direct")
        direct_result = measure(direct)
        self._rewarm(gateway, run)
        self.say(f"{what}: via gateway ({run.transport})")
        gateway_result = measure(gateway)
        run.count(gateway_result)
        return {"direct": direct_result, "gateway": gateway_result}

    def quota_pair(self, via: Target, port: int, run: GatewayRun) -> dict[str, RunResult]:
        """Scenario 2c: what checking every level of limits and budgets adds to a request."""
        limited = _targets(port, self.quota_key, end_user="bench-user")
        self.say("2c. limits and budgets: key with no rules")
        self._rewarm(via, run)
        plain = self.uniform_rate(via)
        run.count(plain)
        self.say("2c. limits and budgets: key under tenant, team, key and user rules")
        self._rewarm(limited, run)
        checked = self.uniform_rate(limited)
        run.count(checked)
        return {"direct": plain, "gateway": checked}

    def fixed_concurrency(self, target: Target) -> RunResult:
        return hey.run(
            target, concurrency=self.settings.concurrency, duration_s=self.settings.duration_s
        )

    def serial(self, target: Target) -> RunResult:
        return hey.run(target, concurrency=1, duration_s=self.settings.duration_s)

    def stream_throughput(self, target: Target) -> StreamResult:
        return client.stream(
            target, concurrency=self.settings.concurrency, duration_s=self.settings.duration_s
        )

    def fixed_rate(self, target: Target) -> RunResult:
        return hey.run(
            target,
            concurrency=self.settings.rate_workers,
            qps_per_worker=self.settings.rate_qps_per_worker,
            duration_s=self.settings.duration_s,
        )

    def uniform_rate(self, target: Target) -> RunResult:
        return client.open_loop(
            target, rate=self.settings.rate, duration_s=self.settings.duration_s
        )

    def cold_burst(self, gateway: Target, run: GatewayRun) -> RunResult:
        """Idle past the key cache, then many simultaneous requests: every lookup misses at once.

        A regression check: when each miss held a pooled connection until its request ended,
        such a burst starved the pool and the audit writer, and stalled for 10-20 s.
        """
        idle_s = float(os.environ.get("GATEWAY_KEY_CACHE_SECONDS") or 1.0) + 0.5
        self.say(f"cold burst: idle {idle_s:g} s, then {self.settings.burst_requests} requests")
        time.sleep(idle_s)
        result = hey.run(
            gateway,
            concurrency=self.settings.burst_connections,
            requests=self.settings.burst_requests,
        )
        run.count(result)
        return result

    def failover_pair(
        self, port: int, run: GatewayRun, audit: db.Audit, breaker: str
    ) -> failover.FailoverRun:
        """Scenario 6 on one gateway: the secondary alone, then the route whose primary 429s."""
        s = self.settings
        secondary = failover.target(port, self.key, failover.ROUTE_SECONDARY)
        route = failover.target(port, self.key, failover.ROUTE_FAILOVER)
        for warm in (secondary, route):
            run.count(self.warm(warm, 100))
        self.say(f"6. failover, breaker {breaker}: the secondary alone")
        alone = client.open_loop(secondary, rate=failover.RATE, duration_s=s.duration_s)
        run.count(alone)
        self.say(f"6. failover, breaker {breaker}: primary 429 -> secondary")
        mark = audit.mark()
        over = client.open_loop(route, rate=failover.RATE, duration_s=s.duration_s)
        run.count(over)
        attempts = failover.attempts_since(s.database_url, mark.max_id)
        return failover.FailoverRun(breaker, alone, over, attempts)

    def failover_pass(self, audit: db.Audit) -> None:
        """A gateway whose breaker never opens: every request of scenario 6 meets the 429."""
        s = self.settings
        port = free_port()
        run = GatewayRun(f"{TRANSPORTS[0]}, breaker off")
        self.results.gateways.append(run)
        env = _env(s, GATEWAY_BREAKER_FAILURES="0")
        with _server(
            "gateway-breaker-off", _gateway_argv(port), port, self.workdir, env, "/healthz"
        ) as (gateway, startup_s):
            run.startup_s = startup_s
            run.rss_idle_kib = gateway.memory_kib().get("VmRSS", 0)
            mark = audit.mark()
            try:
                self.results.failover.insert(0, self.failover_pair(port, run, audit, "off"))
                gateway.check_alive()
                memory = gateway.memory_kib()
                run.rss_after_kib, run.peak_kib = memory.get("VmRSS", 0), memory.get("VmHWM", 0)
            finally:
                run.log_errors = log_digest(gateway.log_text())
                run.audit_added, run.audit_by_status = audit.since(mark)

    def streaming(self, target: Target) -> StreamResult:
        return client.stream(
            target,
            concurrency=self.settings.stream_concurrency,
            requests=self.settings.stream_requests,
        )

    # --- the run ------------------------------------------------------------------------------
    def run(self) -> Results:
        s = self.settings
        mock_port, limited_port, secondary_port = free_port(), free_port(), free_port()
        self.prepare(mock_port, limited_port, secondary_port)
        audit = db.Audit(s.database_url)
        with ExitStack() as servers:
            mock, _ = servers.enter_context(
                _server(
                    "mock", _mock_argv(mock_port), mock_port, self.workdir, _env(s), "/v1/models"
                )
            )
            for name, port, is_429 in (
                ("mock-429", limited_port, True),
                ("mock-secondary", secondary_port, False),
            ):
                argv = _mock_argv(port, *failover.mock_args(is_429))
                servers.enter_context(_server(name, argv, port, self.workdir, _env(s), "/health"))
            self.say(f"mock provider up on :{mock_port}; warming it up")
            direct = _targets(mock_port, None)
            self.warm(direct, s.warmup_requests)
            for transport in TRANSPORTS:
                self.gateway_pass(transport, mock, audit, direct, mock_port)
            self.failover_pass(audit)
            if s.baseline:
                self.say(f"side by side with {s.baseline}")
                self.results.baseline = compare(self, s.baseline, mock_port)
            if s.compare == "litellm":
                self.results.litellm = litellm.compare(self, mock_port)
        self.say("timing the prompt registry step in-process")
        self.results.prompt_costs = prompt_timings(5000 if s.quick else 20000)
        self.say("timing the write-ahead journal step in-process")
        self.results.journal_costs = journal_timings(3.0 if s.quick else 10.0)
        self.say("timing response cache lookups that miss, in-process")
        self.results.cache_costs = cache_timings(500 if s.quick else 3000)
        return self.results

    def gateway_pass(
        self, transport: str, mock: Server, audit: db.Audit, direct: Target, mock_port: int
    ) -> None:
        """Start one gateway; the default transport runs scenarios 1-3, the other scenario 1 only."""
        s, results = self.settings, self.results
        port = free_port()
        run = GatewayRun(transport)
        results.gateways.append(run)
        env = _env(s, GATEWAY_UPSTREAM_TRANSPORT=transport)
        with _server(
            f"gateway-{transport}", _gateway_argv(port), port, self.workdir, env, "/healthz"
        ) as (gateway, startup_s):
            run.startup_s = startup_s
            run.rss_idle_kib = gateway.memory_kib().get("VmRSS", 0)
            mark = audit.mark()
            via = _targets(port, self.key)
            self.say(f"gateway ({transport}) up on :{port} in {startup_s:.1f} s; warming it up")
            run.count(self.warm(via, s.warmup_requests))
            try:
                pair = self.pair(
                    f"1. fixed concurrency c={s.concurrency}",
                    direct,
                    via,
                    run,
                    self.fixed_concurrency,
                )
                results.transports[transport] = pair
                if transport == TRANSPORTS[0]:
                    results.fixed_concurrency = pair
                    results.serial = self.pair("1b. concurrency 1", direct, via, run, self.serial)
                    results.fixed_rate = self.pair(
                        f"2. fixed rate {s.rate:g}/s (hey)", direct, via, run, self.fixed_rate
                    )
                    results.uniform_rate = self.pair(
                        f"2b. fixed rate {s.rate:g}/s (uniform)",
                        direct,
                        via,
                        run,
                        self.uniform_rate,
                    )
                    results.quota_rate = self.quota_pair(via, port, run)
                    self.warm(_targets(mock_port, None, stream=True), 40)
                    results.streaming = self.pair(
                        "3. streaming",
                        _targets(mock_port, None, stream=True),
                        _targets(port, self.key, stream=True),
                        run,
                        self.streaming,
                    )
                    results.stream_throughput = self.pair(
                        f"3b. streams at {s.concurrency} connections",
                        _targets(mock_port, None, stream=True),
                        _targets(port, self.key, stream=True),
                        run,
                        self.stream_throughput,
                    )
                    results.cold_burst = self.cold_burst(via, run)
                    results.failover.append(self.failover_pair(port, run, audit, "default"))
                mock.check_alive()
                gateway.check_alive()
                memory = gateway.memory_kib()
                run.rss_after_kib, run.peak_kib = memory.get("VmRSS", 0), memory.get("VmHWM", 0)
            finally:
                run.log_errors = log_digest(gateway.log_text())
                # Audit rows are committed before each answer, so the count is final here.
                try:
                    run.audit_added, run.audit_by_status = audit.since(mark)
                except Exception as exc:  # don't let it hide the error that got us here
                    self.say(f"could not count audit rows: {exc}")
