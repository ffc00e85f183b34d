"""`python -m bench [--quick] [--duration S] [--compare litellm]`: run the benchmark, print it,
write docs/benchmarks.md.

Exits 1 when the gateway answered anything but 200 or the audit rows do not match the answers
(missed performance goals are reported, not failed: they depend on the machine).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from bench.db import ROOT
from bench.procs import ServerError
from bench.report import render
from bench.scenarios import Bench, Results, Settings

DOCS = ROOT / "docs" / "benchmarks.md"


def parse_args(argv: list[str] | None = None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 3 s timed runs and fewer requests (about 40 s in all)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="seconds per timed run (default 10, or 3 with --quick)",
    )
    parser.add_argument(
        "--no-docs", action="store_true", help=f"do not write {DOCS.relative_to(ROOT)}"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gateway_bench"
        ),
        help="PostgreSQL database for the gateway (created if missing; env BENCH_DATABASE_URL)",
    )
    parser.add_argument(
        "--baseline",
        default="",
        metavar="REF",
        help="also run the gateway scenarios against git REF, in turns with this tree",
    )
    parser.add_argument(
        "--compare",
        choices=("litellm", "none"),
        default="none",
        help="also run the side-by-side scenarios against LiteLLM's proxy, installed on first "
        "use into var/bench/litellm-venv (`make bench` passes litellm; 5 to 8 more minutes)",
    )
    args = parser.parse_args(argv)
    compare = "" if args.compare == "none" else args.compare
    duration = args.duration if args.duration is not None else (3.0 if args.quick else 10.0)
    if not 1 <= duration <= 60:
        parser.error("--duration must be between 1 and 60 seconds")
    if args.quick:
        settings = Settings(
            duration_s=duration,
            quick=True,
            stream_requests=60,
            warmup_requests=100,
            database_url=args.database_url,
            baseline=args.baseline,
            compare=compare,
        )
    else:
        settings = Settings(
            duration_s=duration,
            database_url=args.database_url,
            baseline=args.baseline,
            compare=compare,
        )
    return settings, args


def correctness_failures(results: Results) -> list[str]:
    failures = []
    for run in results.gateways:
        if run.answered != run.ok or run.client_errors:
            failures.append(
                f"gateway ({run.transport}): {run.answered - run.ok} non-200 answers, "
                f"{run.client_errors} requests without an answer"
            )
        if run.audit_by_status.get("in_progress"):
            failures.append(
                f"gateway ({run.transport}): {run.audit_by_status['in_progress']} stream audit "
                "rows still in_progress after the streams ended"
            )
        if not run.audit_matches:
            failures.append(
                f"gateway ({run.transport}): {run.audit_added} audit rows for "
                f"{run.answered} answers"
            )
    for fo in results.failover:
        if fo.breaker == "off" and fo.attempts.both_attempts != fo.failover.answered:
            failures.append(
                f"failover: {fo.attempts.both_attempts} of {fo.failover.answered} audit records "
                "show the 429 from the primary and the answer from the secondary"
            )
    side_by_side = results.litellm
    for side in side_by_side.sides if side_by_side else []:
        if side.name == "gateway" and (side.failed or side.error):
            failures.append(
                f"side by side ({side.workers} workers): the gateway failed {side.failed} "
                f"requests{': ' + side.error if side.error else ''}"
            )
    return failures


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so every `finally` stops the servers.
    raise SystemExit(128 + signum)


_SECTION = re.compile(r"<!-- ([\w-]+):start -->.*?<!-- \1:end -->\n?", re.S)


def carry_over(new_page: str, path: Path) -> str:
    """`new_page` plus the marked sections other benchmarks wrote into the current page
    (`<!-- name:start -->` … `<!-- name:end -->`, e.g. guardrails and rollups)."""
    old = path.read_text() if path.exists() else ""
    kept = [
        m.group(0) for m in _SECTION.finditer(old) if f"<!-- {m.group(1)}:start -->" not in new_page
    ]
    return "\n\n".join([new_page.rstrip("\n"), *(k.rstrip("\n") for k in kept)]) + "\n"


def main(argv: list[str] | None = None) -> int:
    settings, args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        bench = Bench(settings, Path(tmp))
        try:
            results = bench.run()
        except ServerError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 2
    wall_s = time.monotonic() - start
    text = render(results, wall_s)
    print(text)
    if not args.no_docs:
        DOCS.parent.mkdir(exist_ok=True)
        DOCS.write_text(carry_over(text, DOCS))  # keeps sections other benchmarks wrote
        print(f"Wrote {DOCS.relative_to(ROOT)} ({wall_s:.0f} s in all).", file=sys.stderr)
    failures = correctness_failures(results)
    for failure in failures:
        print(f"bench: FAILED CHECK: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
