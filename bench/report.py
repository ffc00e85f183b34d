"""Render the results as Markdown: printed as-is and written to docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bench import cache_cost, failover, journal_cost, litellm, prompt_cost
from bench.baseline import ROUNDS
from bench.baseline import rows as baseline_rows
from bench.db import ROOT
from bench.scenarios import TRANSPORTS, Results
from bench.stats import RunResult, StreamResult, added

# The goals the headline numbers are held to.
GOAL_ADDED_P50_MS = 3.0
GOAL_QUOTA_P50_MS = 0.5
GOAL_ADDED_P99_MS = 15.0
GOAL_PROXIED_RPS = 300.0

# Issue 22's goals ("the fastest Python gateway"): one worker with key auth, the write-ahead
# journal, the committed audit record, limits and budgets on. Held beside the older goals above.
ISSUE_22 = "#22"
GOAL22_PROXIED_RPS = 1000.0
GOAL22_STREAMS_PER_S = 800.0
GOAL22_ADDED_P50_MS = 2.0  # at 100 evenly spaced req/s, and at concurrency 1
GOAL22_ADDED_P99_MS = 8.0
GOAL22_TTFT_ADDED_MS = 2.0
GOAL22_RSS_MIB = 150.0  # idle and after load
GOAL22_STARTUP_S = 3.0


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def commit() -> str:
    head = _git("rev-parse", "--short", "HEAD")
    if head is None:
        return "none (the repository has no commits yet)"
    return head + (" with uncommitted changes" if _git("status", "--porcelain") else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def hey_version() -> str:
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "hey"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def _ms(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1f}" if sign else f"{value:.1f}"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB" if kib else "n/a"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table padded to line up in a terminal too."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def _run_rows(
    pair: dict[str, RunResult],
    label: str = "via gateway",
    base: str = "mock direct",
    added_by: str = "**added by the gateway**",
) -> list[list[str]]:
    direct, gateway = pair.get("direct"), pair.get("gateway")
    rows = []
    for name, result in ((base, direct), (label, gateway)):
        if result is None:
            continue
        rows.append(
            [
                name,
                f"{result.rps:.0f}",
                _ms(result.p50_ms),
                _ms(result.p99_ms),
                str(result.answered),
                str(result.non_200),
                str(result.client_errors),
            ]
        )
    if direct and gateway:
        rows.append(
            [
                added_by,
                "",
                _ms(added(gateway.p50_ms, direct.p50_ms), True),
                _ms(added(gateway.p99_ms, direct.p99_ms), True),
                "",
                "",
                "",
            ]
        )
    return rows


_RUN_HEADER = ["", "req/s (200s)", "p50 ms", "p99 ms", "answers", "non-200", "client errors"]


def _stream_rows(pair: dict[str, StreamResult]) -> list[list[str]]:
    rows = []
    for name, key in (("mock direct", "direct"), ("via gateway", "gateway")):
        r = pair.get(key)
        if r is not None:
            rows.append(
                [
                    name,
                    str(r.answered),
                    _ms(r.ttft_p50_ms),
                    _ms(r.ttft_p99_ms),
                    _ms(r.total_p50_ms),
                    _ms(r.total_p99_ms),
                    str(r.non_200 + r.incomplete),
                    str(r.client_errors),
                ]
            )
    direct, gateway = pair.get("direct"), pair.get("gateway")
    if direct and gateway:
        rows.append(
            [
                "**added by the gateway**",
                "",
                _ms(added(gateway.ttft_p50_ms, direct.ttft_p50_ms), True),
                _ms(added(gateway.ttft_p99_ms, direct.ttft_p99_ms), True),
                _ms(added(gateway.total_p50_ms, direct.total_p50_ms), True),
                _ms(added(gateway.total_p99_ms, direct.total_p99_ms), True),
                "",
                "",
            ]
        )
    return rows


def _stream_throughput_rows(pair: dict[str, StreamResult]) -> list[list[str]]:
    return [
        [name, f"{r.streams_per_s:.0f}", _ms(r.ttft_p50_ms), _ms(r.ttft_p99_ms),
         str(r.non_200 + r.incomplete), str(r.client_errors)]
        for name, key in (("mock direct", "direct"), ("via gateway", "gateway"))
        if (r := pair.get(key)) is not None
    ]  # fmt: skip


def _stream_capacity_note(results: Results) -> list[str]:
    """What scenario 3's goal asks of the worker. Its connections start a stream as soon as the
    last ends, and the mock answers at once, so a stream's whole time is about its TTFT: the
    goal is a rate (connections / (direct TTFT + goal)), to compare with what 3b reaches."""
    s = results.settings
    direct, gateway = results.streaming.get("direct"), results.streaming.get("gateway")
    flat_out = results.stream_throughput.get("gateway")
    if not direct or not gateway or not flat_out or direct.ttft_p50_ms is None:
        return []
    needed = s.stream_concurrency / ((direct.ttft_p50_ms + GOAL22_TTFT_ADDED_MS) / 1000)
    ran = gateway.requests / gateway.elapsed_s if gateway.elapsed_s else 0.0
    return [
        "",
        f"What scenario 3 asks of the worker: its {s.stream_concurrency} connections each start "
        "a stream as soon as the last one ends, and the mock answers at once, so a stream's "
        f"whole time is about its TTFT. TTFT added <= {GOAL22_TTFT_ADDED_MS:g} ms therefore "
        f"means {needed:.0f} streams/s through the one worker; it ran {ran:.0f} streams/s here, "
        f"and reaches {flat_out.streams_per_s:.0f} flat out (3b). Below that rate the time "
        "is the worker's own; near it, most is waiting for the worker's other streams.",
    ]


def _verdict(value: float | None, limit: float, below: bool) -> str:
    if value is None:
        return "no data"
    return "met" if (value < limit if below else value >= limit) else "**missed**"


def _at_most(value: float | None, limit: float) -> str:
    if value is None:
        return "no data"
    return "met" if value <= limit else "**missed**"


def _added_p(pair: dict[str, RunResult], p99: bool = False) -> float | None:
    d, g = pair.get("direct"), pair.get("gateway")
    if d is None or g is None:
        return None
    return added(g.p99_ms, d.p99_ms) if p99 else added(g.p50_ms, d.p50_ms)


def _issue_22_rows(results: Results) -> list[list[str]]:
    """Issue 22's goals, from the default gateway's run (scenarios 1, 1b, 2b, 3, 3b and 5)."""
    s = results.settings
    g = results.fixed_concurrency.get("gateway")
    streams = results.stream_throughput.get("gateway")
    sd, sg = results.streaming.get("direct"), results.streaming.get("gateway")
    run = next((r for r in results.gateways if r.transport == TRANSPORTS[0]), None)
    rss_idle = run.rss_idle_kib / 1024 if run and run.rss_idle_kib else None
    rss_after = run.rss_after_kib / 1024 if run and run.rss_after_kib else None
    at_least = [
        (f"proxied throughput at {s.concurrency} connections", g.rps if g else None,
         GOAL22_PROXIED_RPS, "req/s"),
        (f"streams at {s.concurrency} connections (3b)",
         streams.streams_per_s if streams else None, GOAL22_STREAMS_PER_S, "streams/s"),
    ]  # fmt: skip
    at_most = [
        (f"added p50 at {s.rate:g} evenly spaced req/s (2b)", _added_p(results.uniform_rate),
         GOAL22_ADDED_P50_MS, "ms"),
        (f"added p99 at {s.rate:g} evenly spaced req/s (2b)",
         _added_p(results.uniform_rate, p99=True), GOAL22_ADDED_P99_MS, "ms"),
        ("added p50 at concurrency 1 (1b)", _added_p(results.serial), GOAL22_ADDED_P50_MS, "ms"),
        (f"time to first token added, p50 at {s.stream_concurrency} connections (3)",
         added(sg.ttft_p50_ms, sd.ttft_p50_ms) if sd and sg else None, GOAL22_TTFT_ADDED_MS, "ms"),
        ("worker RSS idle (5)", rss_idle, GOAL22_RSS_MIB, "MiB"),
        ("worker RSS after load (5)", rss_after, GOAL22_RSS_MIB, "MiB"),
        ("start-up to /healthz (5)", run.startup_s if run else None, GOAL22_STARTUP_S, "s"),
    ]  # fmt: skip
    rows = [
        [f"{ISSUE_22}: {what}", f">= {goal:g} {unit}",
         "n/a" if value is None else f"{value:.0f} {unit}", _verdict(value, goal, False)]
        for what, value, goal, unit in at_least
    ]  # fmt: skip
    rows += [
        [f"{ISSUE_22}: {what}", f"<= {goal:g} {unit}",
         "n/a" if value is None else (_ms(value, True) if unit == "ms" else f"{value:.1f}") + f" {unit}",
         _at_most(value, goal)]
        for what, value, goal, unit in at_most
    ]  # fmt: skip
    return rows


def _goals(results: Results) -> str:
    rate = results.settings.rate
    rows = []
    for name, pair in (
        (
            f"hey -c {results.settings.rate_workers} -q {results.settings.rate_qps_per_worker:g}",
            results.fixed_rate,
        ),
        ("uniform arrivals", results.uniform_rate),
    ):
        d, g = pair.get("direct"), pair.get("gateway")
        p50 = added(g.p50_ms, d.p50_ms) if d and g else None
        p99 = added(g.p99_ms, d.p99_ms) if d and g else None
        rows.append(
            [
                f"added p50 at {rate:g} req/s ({name})",
                f"< {GOAL_ADDED_P50_MS:g} ms",
                _ms(p50, True) + " ms",
                _verdict(p50, GOAL_ADDED_P50_MS, True),
            ]
        )
        rows.append(
            [
                f"added p99 at {rate:g} req/s ({name})",
                f"< {GOAL_ADDED_P99_MS:g} ms",
                _ms(p99, True) + " ms",
                _verdict(p99, GOAL_ADDED_P99_MS, True),
            ]
        )
    plain, checked = results.quota_rate.get("direct"), results.quota_rate.get("gateway")
    quota_p50 = added(checked.p50_ms, plain.p50_ms) if plain and checked else None
    rows.append(
        [
            "added p50 of limits and budgets, every level (2c)",
            f"< {GOAL_QUOTA_P50_MS:g} ms",
            _ms(quota_p50, True) + " ms",
            _verdict(quota_p50, GOAL_QUOTA_P50_MS, True),
        ]
    )
    off = next((f for f in results.failover if f.breaker == "off"), None)
    fo_p50 = off.added_p50 if off else None
    rows.append(
        [
            "failover added p50: 429 on the primary, answer from the secondary (6)",
            f"< {failover.GOAL_ADDED_P50_MS:g} ms",
            _ms(fo_p50, True) + " ms",
            _verdict(fo_p50, failover.GOAL_ADDED_P50_MS, True),
        ]
    )
    g = results.fixed_concurrency.get("gateway")
    rps = g.rps if g else None
    rows.append(
        [
            f"proxied throughput at {results.settings.concurrency} connections",
            f">= {GOAL_PROXIED_RPS:g} req/s",
            f"{rps:.0f} req/s" if rps is not None else "n/a",
            _verdict(rps, GOAL_PROXIED_RPS, False),
        ]
    )
    rows.append(prompt_cost.goal_row(results.prompt_costs))
    rows.append(journal_cost.goal_row(results.journal_costs))
    rows.extend(cache_cost.goal_rows(results.cache_costs))
    rows.extend(_issue_22_rows(results))
    return table(["Goal", "Target", "Measured", ""], rows)


def _transport_rows(results: Results) -> list[list[str]]:
    rows = []
    for transport in TRANSPORTS:
        pair = results.transports.get(transport, {})
        r, direct = pair.get("gateway"), pair.get("direct")
        if r is None or direct is None:
            continue
        name = transport + (" (default)" if transport == TRANSPORTS[0] else "")
        rows.append(
            [
                name,
                f"{r.rps:.0f}",
                _ms(r.p50_ms),
                _ms(r.p99_ms),
                _ms(added(r.p50_ms, direct.p50_ms), True),
                _ms(added(r.p99_ms, direct.p99_ms), True),
                str(r.non_200),
                str(r.client_errors),
            ]
        )
    return rows


def _failover_rows(results: Results) -> list[list[str]]:
    rows = []
    for run in results.failover:
        rows.append(
            [
                run.breaker,
                _ms(run.secondary.p50_ms),
                _ms(run.secondary.p99_ms),
                _ms(run.failover.p50_ms),
                _ms(run.failover.p99_ms),
                _ms(run.added_p50, True),
                _ms(run.added_p99, True),
                str(run.failover.answered),
                str(run.failover.non_200 + run.secondary.non_200),
                f"{run.attempts.both_attempts} / {run.attempts.records}",
                str(run.attempts.passed_over),
            ]
        )
    return rows


def _gateway_rows(results: Results) -> tuple[list[list[str]], list[list[str]]]:
    memory, audit = [], []
    for run in results.gateways:
        memory.append(
            [
                run.transport,
                f"{run.startup_s:.1f} s",
                _mib(run.rss_idle_kib),
                _mib(run.rss_after_kib),
                _mib(run.peak_kib),
            ]
        )
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(run.audit_by_status.items())) or "-"
        audit.append(
            [
                run.transport,
                str(run.answered),
                str(run.ok),
                str(run.answered - run.ok),
                str(run.client_errors),
                str(run.audit_added),
                statuses,
                "yes" if run.audit_matches else "**NO**",
            ]
        )
    return memory, audit


def _problems(results: Results) -> list[str]:
    lines: list[str] = []
    for run in results.gateways:
        for count, message in run.log_errors[:8]:
            lines.append(f"- gateway ({run.transport}) logged {count}x `{message}`")
    samples: list[tuple[str, list[str]]] = []
    for title, pair in (
        ("1. fixed concurrency", results.fixed_concurrency),
        ("2. fixed rate (hey)", results.fixed_rate),
        ("2b. fixed rate (uniform)", results.uniform_rate),
    ):
        for side, r in pair.items():
            samples.append((f"{title}, {side}", r.error_samples))
    if results.cold_burst is not None:
        samples.append(("cold burst", results.cold_burst.error_samples))
    for fo in results.failover:
        for side, r in (("secondary alone", fo.secondary), ("failover", fo.failover)):
            samples.append((f"6. failover (breaker {fo.breaker}), {side}", r.error_samples))
    for side, s in results.streaming.items():
        samples.append((f"3. streaming, {side}", s.error_samples))
    for transport, pair in results.transports.items():
        if transport != TRANSPORTS[0]:
            for side, r in pair.items():
                samples.append((f"4. transport {transport}, {side}", r.error_samples))
    for where, errors in samples:
        lines.extend(f"- client errors in {where}: {e}" for e in errors[:3])
    return lines


def _baseline_section(results: Results) -> list[str]:
    comparison = results.baseline
    if comparison is None:
        return []
    return [
        f"## Side by side with `{comparison.ref}` ({comparison.commit[:12]})",
        "",
        f"Both gateways up at once on the same database, mock and keys; scenario 1, 2b and the "
        f"stream scenario taken in turns, {ROUNDS} rounds each, medians shown "
        "(bench/baseline.py). A ratio above 1 means this tree's figure is larger.",
        "",
        table(["figure", "this tree", comparison.ref, "this / ref"], baseline_rows(comparison)),
        "",
    ]


def litellm_section(result: litellm.SideBySide, commit_: str) -> list[str]:
    """The side-by-side with LiteLLM's proxy, between markers so that a run without it keeps
    the last one measured (`carry_over`)."""
    lines = ["<!-- litellm:start -->", "## Side by side with LiteLLM's proxy", ""]
    if result.unavailable:
        return [
            *lines,
            f"Not measured ({result.date}): {result.unavailable}",
            "",
            "<!-- litellm:end -->",
            "",
        ]
    lines += [
        f"- Date: {result.date}; commit {commit_}; LiteLLM {result.version} "
        f"(`litellm[proxy]`, in var/bench/litellm-venv); command `{result.command}`",
        f"- Load average when this part started: {result.load_before} "
        f"({os.cpu_count()} CPUs; above 0.5 other work was running)",
        "- Each server alone against the same mock, one worker then two (uvicorn workers on "
        "both): the gateway, LiteLLM, the gateway, LiteLLM. Max req/s is hey at "
        f"{result.concurrency} connections; max streams/s is complete streams in the same time "
        f"at {result.concurrency} connections; *added* figures subtract the mock's own (direct, "
        "same run); RSS sums every process of the server (supervisor and workers).",
        "- The gateway: key authentication, limits and budgets at every level (tenant, team, "
        "key, end user; one Redis script), the write-ahead journal and the audit record "
        "committed to PostgreSQL before each answer. LiteLLM: its master key only, no "
        "database: virtual keys, their budgets and rate limits, and spend logs need its "
        "PostgreSQL database and are off. The gateway does more per request.",
        "- A ratio is the gateway's figure over LiteLLM's: above 1 is better for req/s and "
        "streams/s, below 1 is better for latency, memory and start-up.",
        "",
        table(litellm.header(result), litellm.rows(result)),
        "",
    ]
    if any("(over its max)" in cell for row in litellm.rows(result) for cell in row):
        lines += [
            "*(over its max)*: the rate is above what that server sustains, so requests queue "
            "and the figure is mostly waiting.",
            "",
        ]
    for side in result.sides:
        who = f"{side.name}, {side.workers} worker{'s' if side.workers > 1 else ''}"
        if side.error:
            lines.append(f"- {who}: not measured: `{side.error}`")
        lines += [f"- {who}, {problem}" for problem in side.problems()]
    return [*lines, "", "<!-- litellm:end -->", ""]


def render(results: Results, wall_s: float) -> str:
    s = results.settings
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick smoke run, not representative" if s.quick else "full run"
    parts = [
        "# Benchmarks",
        "",
        "_Generated by `make bench` (`python -m bench`); edits are overwritten on the next run._",
        "",
        f"- Date: {now}; {mode}; {s.duration_s:g} s per timed run; whole run {wall_s:.0f} s",
        f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, hey {hey_version()}",
        f"- Commit: {commit()}",
        "",
        "## Method",
        "",
        "- One machine: the load generator, the mock provider (`python -m mock_provider`, 0 ms "
        "latency) and the gateway (one uvicorn worker, uvloop + httptools) share all its CPUs.",
        "- The gateway runs against PostgreSQL with authentication and audit on: every proxied "
        "call commits its audit row before it is answered.",
        "- Every scenario runs the same small chat request against the mock directly, then "
        "through the gateway; *added* is the difference of the two percentiles.",
        "- Each server is warmed up first (a few hundred requests at 4 connections), and the "
        "gateway again just before each timed run, so its 1 s key cache starts warm.",
        "- Scenarios 1, 2 and 4 use `hey`. hey's rate-limited workers tick in lockstep (bursts of "
        f"{s.rate_workers} every {1000 / s.rate_qps_per_worker:g} ms), so 2b repeats the rate with "
        "evenly spaced requests from an open-loop aiohttp client, timed from the planned send "
        "instant.",
        "- Streaming uses an aiohttp client: time to the first `data:` line (TTFT) and to "
        "`data: [DONE]`.",
        "- Scenario 4 restarts the gateway with `GATEWAY_UPSTREAM_TRANSPORT=httpx` and repeats "
        "scenario 1 (with its own direct run); memory is VmRSS from `/proc/PID/status` after the load.",
        f"- Scenario 6 adds two mock processes: one answers 429 to everything (OpenAI format, no "
        f"Retry-After), the other is an Anthropic-format secondary with a fixed "
        f"{failover.SECONDARY_LATENCY_MS} ms latency. At {failover.RATE:g} evenly spaced req/s, a "
        "route to the secondary alone, then a route primary → secondary, through the same gateway; "
        "once with the circuit breaker off (`GATEWAY_BREAKER_FAILURES=0`: every request meets the "
        "429) and once with the default breaker (the primary is passed over while it cools down).",
        "- Correctness: every answer is counted by status, the audit rows of the `bench` "
        "tenant must grow by exactly the number of requests the gateway answered, and a "
        "burst after idling (all key lookups missing at once) must be answered promptly.",
        "",
        "## Goals",
        "",
        _goals(results),
        "",
        *_baseline_section(results),
        *(litellm_section(results.litellm, commit()) if results.litellm else []),
        f"## 1. Fixed concurrency: {s.concurrency} connections, {s.duration_s:g} s",
        "",
        table(_RUN_HEADER, _run_rows(results.fixed_concurrency)),
        "",
        "Both servers run flat out here, so latency is mostly queueing (connections / "
        "throughput); the per-request overhead is what scenario 2 measures.",
        "",
        f"1b. One connection, one request at a time, {s.duration_s:g} s (hey `-c 1`):",
        "",
        table(_RUN_HEADER, _run_rows(results.serial)),
        "",
        f"## 2. Fixed rate: {s.rate:g} req/s, {s.duration_s:g} s",
        "",
        f"hey `-c {s.rate_workers} -q {s.rate_qps_per_worker:g}` (bursty):",
        "",
        table(_RUN_HEADER, _run_rows(results.fixed_rate)),
        "",
        "2b. Open-loop, evenly spaced requests:",
        "",
        table(_RUN_HEADER, _run_rows(results.uniform_rate)),
        "",
        "2c. The same evenly spaced load through the gateway, with a key under no rule and with",
        "a key under rate limits and budgets at every level (tenant, team, key, each end user;",
        "one Redis round trip per request when REDIS_URL is set, as in `make bench`: the",
        "admission's script also applies the worker's settlements since the last one;",
        "`manage.py quota_bench` times admission in-process, docs/quotas.md):",
        "",
        table(
            _RUN_HEADER,
            _run_rows(
                results.quota_rate,
                label="every level of limits and budgets",
                base="no limits or budgets",
                added_by="**added by limits and budgets**",
            ),
        ),
        "",
        f"## 3. Streaming: {s.stream_requests} requests, {s.stream_concurrency} connections",
        "",
        table(
            [
                "",
                "streams",
                "TTFT p50 ms",
                "TTFT p99 ms",
                "total p50 ms",
                "total p99 ms",
                "failed",
                "client errors",
            ],
            _stream_rows(results.streaming),
        ),
        "",
        f"3b. Streams for {s.duration_s:g} s at {s.concurrency} connections (complete streams, "
        "ending `data: [DONE]`, per second):",
        "",
        table(
            ["", "streams/s", "TTFT p50 ms", "TTFT p99 ms", "failed", "client errors"],
            _stream_throughput_rows(results.stream_throughput),
        ),
        *_stream_capacity_note(results),
        "",
        f"## 4. Upstream transport: scenario 1 ({s.concurrency} connections) per transport",
        "",
        table(
            [
                "transport",
                "req/s (200s)",
                "p50 ms",
                "p99 ms",
                "added p50",
                "added p99",
                "non-200",
                "client errors",
            ],
            _transport_rows(results),
        ),
    ]
    memory, audit = _gateway_rows(results)
    parts += [
        "",
        "## 5. Memory of the gateway worker",
        "",
        table(["transport", "start-up", "RSS idle", "RSS after load", "peak RSS"], memory),
        "",
        f"## 6. Failover: 429 on the primary, answer from the secondary ({failover.RATE:g} req/s)",
        "",
        table(
            [
                "breaker",
                "secondary alone p50",
                "p99",
                "failover p50",
                "p99",
                "added p50",
                "added p99",
                "answers",
                "non-200",
                "records 429 → 200",
                "primary passed over",
            ],
            _failover_rows(results),
        ),
        "",
        "*Added* is what the failover route costs beyond the secondary's own latency through the "
        "gateway: the primary's round trip and 429, and the second attempt. With the breaker on, "
        "the primary is asked until three 429s in a row open it, then passed over for 30 s.",
        "",
        "## Correctness",
        "",
        table(
            [
                "gateway",
                "answers",
                "200",
                "non-200",
                "client errors",
                "audit rows added",
                "audit rows by status",
                "rows = answers",
            ],
            audit,
        ),
    ]
    burst = results.cold_burst
    if burst is not None:
        parts += [
            "",
            f"Cold burst ({TRANSPORTS[0]}): after an idle pause longer than the key cache, "
            f"{burst.answered + burst.client_errors} requests at {s.burst_connections} connections "
            f"(every key lookup misses at once): p50 {_ms(burst.p50_ms)} ms, "
            f"p99 {_ms(burst.p99_ms)} ms, {burst.non_200} non-200, "
            f"{burst.client_errors} client errors.",
        ]
    if results.prompt_costs:
        parts += ["", *prompt_cost.section(results.prompt_costs)]
    if results.journal_costs:
        parts += ["", *journal_cost.section(results.journal_costs)]
    if results.cache_costs:
        parts += ["", *cache_cost.section(results.cache_costs)]
    problems = _problems(results)
    if problems:
        parts += ["", "Problems seen during the run:", "", *problems]
    return "\n".join(parts) + "\n"
