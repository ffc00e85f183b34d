"""`python -m mock_provider --port 9100 ...`: serve the mock with uvicorn.

uvloop + httptools and no access log, so the mock is never a benchmark's bottleneck.
"""

from __future__ import annotations

import argparse

import uvicorn

from mock_provider.app import create_app
from mock_provider.config import ConfigError, MockConfig, parse_faults
from mock_provider.faults import DEFAULT_FAULTS


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, MockConfig]:
    parser = argparse.ArgumentParser(prog="python -m mock_provider", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--ttft-ms", type=int, default=None)
    parser.add_argument("--chunk-delay-ms", type=int, default=0)
    parser.add_argument("--status", type=int, default=None, help="inject this error status")
    parser.add_argument(
        "--fail-rate", type=float, default=1.0, help="fraction failing with --status"
    )
    parser.add_argument(
        "--retry-after", type=float, default=None, help="seconds, on injected errors"
    )
    parser.add_argument("--fail-marker", default=None, help="answer 500 when the text contains it")
    parser.add_argument("--break-after-chunks", type=int, default=None)
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="fraction of requests meeting a mixed fault"
    )
    parser.add_argument(
        "--faults",
        default=",".join(DEFAULT_FAULTS),
        help=f"fault kinds taken in turn, comma-separated (default {','.join(DEFAULT_FAULTS)})",
    )
    parser.add_argument(
        "--stall-ms", type=int, default=30_000, help="how long a 'stall' fault lasts"
    )
    parser.add_argument("--api-key", default=None, help="require this API key")
    parser.add_argument("--embedding-dimensions", type=int, default=16)
    parser.add_argument(
        "--echo-words",
        action="append",
        default=[],
        metavar="MODEL=N",
        help="MODEL echoes only N words of the prompt (repeatable; default mock-gpt-mini=4)",
    )
    args = parser.parse_args(argv)
    echo_words = dict(MockConfig().echo_words)
    for item in args.echo_words:
        model, _, count = item.partition("=")
        if not model or not count.isdigit():
            parser.error(f"--echo-words takes MODEL=N, not {item!r}")
        echo_words[model] = int(count)
    if not 0 <= args.fail_rate <= 1:
        parser.error("--fail-rate must be between 0 and 1")
    if not 0 <= args.fault_rate <= 1:
        parser.error("--fault-rate must be between 0 and 1")
    try:
        faults = parse_faults(args.faults)
    except ConfigError as exc:
        parser.error(f"--faults: {exc}")
    config = MockConfig(
        latency_ms=args.latency_ms,
        ttft_ms=args.ttft_ms,
        chunk_delay_ms=args.chunk_delay_ms,
        status=args.status,
        fail_rate=args.fail_rate,
        retry_after=args.retry_after,
        fail_marker=args.fail_marker,
        break_after_chunks=args.break_after_chunks,
        fault_rate=args.fault_rate,
        faults=faults,
        stall_ms=args.stall_ms,
        required_api_key=args.api_key,
        embedding_dimensions=args.embedding_dimensions,
        echo_words=echo_words,
    )
    return args, config


KEEP_ALIVE_S = 120


def main(argv: list[str] | None = None) -> None:
    args, config = parse_args(argv)
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        # Real providers keep idle connections far longer than uvicorn's 5 s default; a short
        # one makes the gateway's pooled connections go stale under bursty load.
        timeout_keep_alive=KEEP_ALIVE_S,
    )


if __name__ == "__main__":
    main()
