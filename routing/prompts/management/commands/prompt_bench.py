from dataclasses import asdict
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandParser

from routing.prompts.benchmark import measure


class Command(BaseCommand):
    help = "Time the prompt registry's step on the hot path (render, pin, canary), in-process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--iterations", type=int, default=20000)
        parser.add_argument("--json", action="store_true", help="one JSON list on stdout")

    def handle(self, *args: Any, iterations: int, json: bool, **options: Any) -> None:
        timings = measure(iterations)
        if json:
            self.stdout.write(orjson.dumps([asdict(t) for t in timings]).decode())
            return
        for t in timings:
            self.stdout.write(f"{t.scenario:34} p50 {t.p50_us:8.2f} µs   p99 {t.p99_us:8.2f} µs")
