"""Side by side with an earlier commit (`make bench BASELINE=<ref>`).

The same gateway scenarios against this tree and against `ref`, checked out as a git worktree and
run with the same virtualenv, mock provider and keys, taken in turns (this, ref, this, ref…) so
that whatever else the machine does weighs on both alike. `ref` gets a database of its own
(`<bench database>_baseline`), migrated and seeded by its own code, so a commit with other
migrations (an earlier layout of the tree) is measured as it ran.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from bench import db
from bench.procs import Server, free_port
from bench.stats import RunResult, StreamResult

if TYPE_CHECKING:
    from bench.scenarios import Bench

ROUNDS = 3


@dataclass
class Side:
    """One gateway's runs of each scenario, in the order they were taken."""

    name: str
    startup_s: float = 0.0
    rss_idle_kib: int = 0
    concurrency: list[RunResult] = field(default_factory=list)
    uniform: list[RunResult] = field(default_factory=list)
    streams: list[StreamResult] = field(default_factory=list)
    non_200: int = 0


@dataclass
class Comparison:
    ref: str
    commit: str
    sides: tuple[Side, Side]


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


@contextmanager
def worktree(ref: str) -> Iterator[tuple[Path, str]]:
    """`ref` checked out beside this tree (removed afterwards), and its full commit id."""
    commit = subprocess.run(
        ["git", "rev-parse", ref], cwd=db.ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="gateway-baseline-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(path), commit],
            cwd=db.ROOT,
            check=True,
        )
        try:
            yield path, commit
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(path)], cwd=db.ROOT, check=False
            )


def compare(bench: Bench, ref: str, mock_port: int) -> Comparison:
    from bench.scenarios import _targets

    s = bench.settings
    this, base = Side("this tree"), Side(ref)
    with worktree(ref) as (path, commit), _servers(bench, path, mock_port) as servers:
        for side, (server, startup_s, port) in zip((this, base), servers, strict=True):
            side.startup_s, side.rss_idle_kib = startup_s, server.memory_kib().get("VmRSS", 0)
            bench.warm(_targets(port, bench.key), s.warmup_requests)
        for round_ in range(ROUNDS):
            for side, (server, _, port) in zip((this, base), servers, strict=True):
                bench.say(f"baseline round {round_ + 1}/{ROUNDS}: {side.name}")
                via = _targets(port, bench.key)
                bench.warm(via, s.rewarm_requests)
                side.concurrency.append(bench.fixed_concurrency(via))
                bench.warm(via, s.rewarm_requests)
                side.uniform.append(bench.uniform_rate(via))
                side.streams.append(bench.streaming(_targets(port, bench.key, stream=True)))
                side.non_200 += sum(r.non_200 for r in (side.concurrency[-1], side.uniform[-1]))
                server.check_alive()
    return Comparison(ref, commit, (this, base))


def baseline_database(database_url: str) -> str:
    """The baseline's own database, beside this tree's."""
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_baseline"))


def _prepare(bench: Bench, tree: Path, mock_port: int) -> dict[str, str]:
    """The baseline's environment, its database migrated and seeded by its own code."""
    from bench.scenarios import _env

    database_url = baseline_database(bench.settings.database_url)
    db.ensure_database(database_url)
    env = _env(bench.settings, BENCH_KEY=bench.key, BENCH_QUOTA_KEY=bench.quota_key)
    env.update(DATABASE_URL=database_url, PYTHONPATH=str(tree))  # its own code first
    db.manage(["migrate", "--verbosity", "0"], env, tree)
    db.seed(bench.workdir, mock_port, env, tree)
    return env


@contextmanager
def _servers(
    bench: Bench, baseline_tree: Path, mock_port: int
) -> Iterator[list[tuple[Server, float, int]]]:
    from bench.scenarios import _env, _gateway_argv, _server

    with ExitStack() as stack:
        started = []
        for name, tree in (("gateway-this", None), ("gateway-baseline", baseline_tree)):
            port = free_port()
            env = _env(bench.settings) if tree is None else _prepare(bench, tree, mock_port)
            server, startup_s = stack.enter_context(
                _server(name, _gateway_argv(port), port, bench.workdir, env, "/healthz", cwd=tree)
            )
            started.append((server, startup_s, port))
        yield started


def rows(comparison: Comparison) -> list[list[str]]:
    this, base = comparison.sides

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} ms"

    def ratio(a: float | None, b: float | None) -> str:
        return "n/a" if not a or not b else f"{a / b:.2f}x"

    figures: list[tuple[str, Callable[[Side], float | None]]] = [
        ("req/s at c=32 (median of rounds)", lambda s: median([r.rps for r in s.concurrency])),
        ("p50 at c=32", lambda s: median([r.p50_ms for r in s.concurrency])),
        ("p99 at c=32", lambda s: median([r.p99_ms for r in s.concurrency])),
        ("p50 at the uniform rate", lambda s: median([r.p50_ms for r in s.uniform])),
        ("p99 at the uniform rate", lambda s: median([r.p99_ms for r in s.uniform])),
        ("stream TTFT p50", lambda s: median([r.ttft_p50_ms for r in s.streams])),
    ]
    table = []
    for label, measure in figures:
        a, b = measure(this), measure(base)
        shown = (
            (f"{a:.0f}", f"{b:.0f}") if label.startswith("req/s") and a and b else (ms(a), ms(b))
        )
        table.append([label, *shown, ratio(a, b)])
    table.append(
        [
            "start-up",
            f"{this.startup_s:.1f} s",
            f"{base.startup_s:.1f} s",
            ratio(this.startup_s, base.startup_s),
        ]
    )
    table.append(
        [
            "RSS idle",
            f"{this.rss_idle_kib / 1024:.0f} MiB",
            f"{base.rss_idle_kib / 1024:.0f} MiB",
            ratio(this.rss_idle_kib, base.rss_idle_kib),
        ]
    )
    table.append(["non-200 answers", str(this.non_200), str(base.non_200), ""])
    return table


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.baseline REF`: only the side-by-side part, printed as a table."""
    import argparse
    import os

    from bench.report import table
    from bench.scenarios import Bench, Settings, _env, _mock_argv, _server

    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__)
    parser.add_argument("ref", help="the git ref to run beside this tree")
    parser.add_argument("--duration", type=float, default=10.0, metavar="S")
    args = parser.parse_args(argv)
    database_url = os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gateway_bench"
    )
    settings = Settings(duration_s=args.duration, database_url=database_url, baseline=args.ref)
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        bench = Bench(settings, Path(tmp))
        mock_port = free_port()
        bench.prepare(mock_port, free_port(), free_port())
        argv_ = _mock_argv(mock_port)
        with _server("mock", argv_, mock_port, bench.workdir, _env(settings), "/v1/models"):
            comparison = compare(bench, args.ref, mock_port)
    header = ["figure", "this tree", f"{args.ref} ({comparison.commit[:12]})", "this / ref"]
    print(table(header, rows(comparison)))
    return 0 if all(side.non_200 == 0 for side in comparison.sides) else 1


if __name__ == "__main__":
    raise SystemExit(main())
