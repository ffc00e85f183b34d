"""The side-by-side with LiteLLM's proxy (bench/litellm.py): its table and the /proc parsing it
sums memory with. Pure: no server is started."""

from __future__ import annotations

from collections import Counter

from bench import litellm
from bench.procs import stat_pgid, status_rss_kib
from bench.report import litellm_section
from bench.stats import RunResult, StreamResult


def _run(rps: float, p50: float, p99: float, failed: int = 0) -> RunResult:
    return RunResult("x", 10.0, Counter({200: 1000, 502: failed}), p50_ms=p50, p99_ms=p99, rps=rps)


def _streams(ttft_p50: float, ok: int = 100, elapsed_s: float = 10.0) -> StreamResult:
    return StreamResult(
        "x", ok, ttft_p50, ttft_p50, 5.0, 9.0, Counter({200: ok}), elapsed_s=elapsed_s
    )


def _side(name: str, workers: int, rps: float, p50: float, **kwargs: object) -> litellm.Side:
    side = litellm.Side(
        name,
        workers,
        startup_s=2.0,
        rss_idle_kib=100 * 1024,
        rss_after_kib=120 * 1024,
        max_rate=_run(rps, 20.0, 40.0),
        max_streams=_streams(3.0, ok=int(rps * 10)),  # 10 s of streams
        uniform=_run(100, p50, p50 * 2),
        ttft=_streams(p50),
    )
    for key, value in kwargs.items():
        setattr(side, key, value)
    return side


def _result(*sides: litellm.Side) -> litellm.SideBySide:
    return litellm.SideBySide(
        version="1.108.7",
        command="python -m bench --compare litellm",
        concurrency=32,
        rate=100.0,
        stream_concurrency=4,
        load_before="0.10 0.20 0.30",
        direct_uniform=_run(100, 1.0, 2.0),
        direct_ttft=_streams(1.0),
        sides=list(sides),
    )


def _row(table: list[list[str]], starts: str) -> list[str]:
    return next(row for row in table if row[0].startswith(starts))


def test_the_ratio_is_the_gateways_figure_over_litellms() -> None:
    table = litellm.rows(
        _result(
            _side("gateway", 1, rps=400, p50=5.0),
            _side("LiteLLM", 1, rps=80, p50=41.0),
            _side("gateway", 2, rps=700, p50=4.0),
            _side("LiteLLM", 2, rps=150, p50=21.0),
        )
    )
    assert _row(table, "max req/s") == [
        "max req/s at 32 connections (non-streaming)",
        "400",
        "80",
        "5.00x",
        "700",
        "150",
        "4.67x",
    ]
    # Added latency: each side's p50 less the mock's own 1 ms.
    assert _row(table, "added p50")[1:4] == ["+4.0 ms", "+40.0 ms (over its max)", "0.10x"]
    assert _row(table, "max streams/s")[1:4] == ["400", "80", "5.00x"]
    assert _row(table, "RSS idle")[1:4] == ["100 MiB", "100 MiB", "1.00x"]
    assert _row(table, "failed requests")[1:3] == ["0", "0"]


def test_a_side_that_did_not_start_shows_no_figures_and_no_ratio() -> None:
    table = litellm.rows(
        _result(
            _side("gateway", 1, rps=400, p50=5.0),
            _side("LiteLLM", 1, rps=80, p50=41.0, error="not ready after 180 s"),
        )
    )
    assert _row(table, "max req/s")[1:] == ["400", "n/a", "n/a", "n/a", "n/a", "n/a"]
    assert _row(table, "failed requests")[2] == "n/a"


def test_an_added_latency_at_or_below_zero_has_no_ratio() -> None:
    assert litellm.ratio(-0.2, 30.0) == "n/a"
    assert litellm.ratio(0.0, 30.0) == "n/a"
    assert litellm.ratio(3.0, 30.0) == "0.10x"


def test_failed_counts_non_200_answers_and_incomplete_streams() -> None:
    side = _side("gateway", 1, rps=400, p50=5.0, max_rate=_run(400, 1, 2, failed=3))
    assert side.ttft is not None
    side.ttft.incomplete = 2
    assert side.failed == 5


def test_the_section_says_what_failed_on_which_side() -> None:
    litellm_side = _side("LiteLLM", 1, rps=80, p50=41.0, uniform=_run(60, 900.0, 25000.0))
    assert litellm_side.uniform is not None
    litellm_side.uniform.client_errors = 40
    litellm_side.uniform.error_samples = ["40x TimeoutError: "]
    result = _result(_side("gateway", 1, rps=400, p50=5.0), litellm_side)
    text = "\n".join(litellm_section(result, "abc1234"))
    assert "- LiteLLM, 1 worker, evenly spaced: 40x TimeoutError" in text
    assert "HTTP" not in text  # no status other than 200 was answered
    assert "gateway, 1 worker," not in text


def test_the_section_says_why_litellm_was_not_measured() -> None:
    result = _result()
    result.unavailable = "LiteLLM could not be installed: no network"
    text = "\n".join(litellm_section(result, "abc1234"))
    assert "no network" in text
    assert text.startswith("<!-- litellm:start -->") and text.rstrip().endswith(
        "<!-- litellm:end -->"
    )


def test_the_section_names_the_version_the_commit_and_the_command() -> None:
    result = _result(_side("gateway", 1, rps=400, p50=5.0), _side("LiteLLM", 1, rps=80, p50=41.0))
    text = "\n".join(litellm_section(result, "abc1234"))
    assert "LiteLLM 1.108.7" in text and "abc1234" in text
    assert "`python -m bench --compare litellm`" in text
    assert "*(over its max)*" in text


def test_streams_per_second_counts_complete_streams_only() -> None:
    streams = _streams(1.0, ok=100, elapsed_s=4.0)
    streams.incomplete = 20
    assert streams.streams_per_s == 20.0


def test_the_process_group_is_read_past_a_command_name_with_spaces_and_parentheses() -> None:
    stat = "4242 (python (worker) 1) S 4200 4100 4100 0 -1 4194304 118 0 0 0"
    assert stat_pgid(stat) == 4100


def test_rss_comes_from_vmrss_and_a_zombie_has_none() -> None:
    assert status_rss_kib("Name:\tpython\nVmHWM:\t  300 kB\nVmRSS:\t  256128 kB\n") == 256128
    assert status_rss_kib("Name:\tpython\nState:\tZ (zombie)\n") == 0
