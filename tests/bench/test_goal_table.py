"""The bench's goal table holds issue 22's goals beside the older ones (bench/report.py). Pure:
no server is started."""

from __future__ import annotations

from collections import Counter

from bench.report import render
from bench.scenarios import GatewayRun, Results, Settings
from bench.stats import RunResult, StreamResult


def _run(p50: float, p99: float, rps: float = 100.0) -> RunResult:
    return RunResult("x", 3.0, Counter({200: 300}), p50_ms=p50, p99_ms=p99, rps=rps)


def _streams(ttft_p50: float, ok: int = 300, elapsed_s: float = 3.0) -> StreamResult:
    return StreamResult(
        "x", ok, ttft_p50, ttft_p50, 5.0, 9.0, Counter({200: ok}), elapsed_s=elapsed_s
    )


def _results(*, rps: float, ttft: float, rss_mib: int) -> Results:
    results = Results(Settings(duration_s=3.0, quick=True))
    results.fixed_concurrency = {"direct": _run(0.1, 0.2, 9000), "gateway": _run(30, 90, rps)}
    results.serial = {"direct": _run(0.1, 0.2), "gateway": _run(1.6, 3.0)}
    results.uniform_rate = {"direct": _run(1.0, 2.0), "gateway": _run(2.5, 12.0)}
    results.streaming = {"direct": _streams(1.0), "gateway": _streams(1.0 + ttft)}
    results.stream_throughput = {
        "direct": _streams(1.0, ok=9000),
        "gateway": _streams(10.0, ok=2700),  # 900 streams/s
    }
    run = GatewayRun("aiohttp", startup_s=2.5)
    run.rss_idle_kib = run.rss_after_kib = rss_mib * 1024
    results.gateways.append(run)
    return results


def _goal(page: str, name: str) -> list[str]:
    line = next(line for line in page.splitlines() if name in line)
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_goal_table_holds_issue_22s_goals_with_their_verdicts() -> None:
    page = render(_results(rps=850, ttft=1.5, rss_mib=170), wall_s=60)
    assert _goal(page, "#22: proxied throughput at 32 connections")[1:] == [
        ">= 1000 req/s",
        "850 req/s",
        "**missed**",
    ]
    assert _goal(page, "#22: streams at 32 connections")[2:] == ["900 streams/s", "met"]
    assert _goal(page, "#22: added p50 at 100 evenly spaced")[1:] == ["<= 2 ms", "+1.5 ms", "met"]
    assert _goal(page, "#22: added p99 at 100 evenly spaced")[2:] == ["+10.0 ms", "**missed**"]
    assert _goal(page, "#22: added p50 at concurrency 1")[2:] == ["+1.5 ms", "met"]
    assert _goal(page, "#22: time to first token added")[2:] == ["+1.5 ms", "met"]
    assert _goal(page, "#22: worker RSS idle")[1:] == ["<= 150 MiB", "170.0 MiB", "**missed**"]
    assert _goal(page, "#22: worker RSS after load")[3] == "**missed**"
    assert _goal(page, "#22: start-up to /healthz")[2:] == ["2.5 s", "met"]


def test_the_older_goals_stay_in_the_table() -> None:
    page = render(_results(rps=1200, ttft=3.0, rss_mib=140), wall_s=60)
    # Another issue's throughput goal, still held on its own row.
    assert _goal(page, "| proxied throughput at 32 connections")[1:] == [
        ">= 300 req/s",
        "1200 req/s",
        "met",
    ]
    assert _goal(page, "added p50 at 100 req/s (uniform arrivals)")[1] == "< 3 ms"
    assert _goal(page, "#22: proxied throughput")[3] == "met"
    assert _goal(page, "#22: time to first token added")[2:] == ["+3.0 ms", "**missed**"]


def test_scenario_3_says_what_rate_its_goal_asks_of_the_worker() -> None:
    # 4 connections, the mock's TTFT 1.0 ms: TTFT added <= 2 ms is 4 / 3.0 ms = 1,333 streams/s.
    page = render(_results(rps=1000, ttft=4.0, rss_mib=140), wall_s=60)
    note = next(line for line in page.splitlines() if line.startswith("What scenario 3 asks"))
    assert "means 1333 streams/s through the one worker" in note
    assert "it ran 100 streams/s here" in note  # 300 streams in 3 s
    assert "reaches 900 flat out (3b)" in note
