"""What the registry adds to a request: `prompt_apply` timed in-process on a warm table.

The end-to-end bench cannot resolve a tenth of a millisecond on a shared machine, so `make bench`
runs this (`manage.py prompt_bench`) and reports its percentiles against the 0.2 ms p50 goal.
No database: the table is built in memory, exactly as the registry cache would hold it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import orjson
from django.test import RequestFactory

from gateway_site.snapshot import Snapshot
from routing.call import parse_json_body
from routing.caller import Caller
from routing.prompts.proxy import prompt_apply
from routing.prompts.registry import (
    CompiledVersion,
    LabelTarget,
    PromptEntry,
    PromptTable,
)
from routing.prompts.render import compile_messages
from routing.runtime import GatewayRuntime
from tenants.auth import KeyIdentity

# A realistic system prompt: about 1.5 KB with three variables.
TEMPLATE = (
    "You are the portfolio assistant of {{ firm }}. Answer {{ client }} about {{ topic }}. "
    + "Keep to the facts in the client's file, cite the holding, never give tax advice. " * 18
)


@dataclass(frozen=True, slots=True)
class Timing:
    scenario: str
    p50_us: float
    p99_us: float


def _identity(key_id: int) -> KeyIdentity:
    return KeyIdentity(
        key_id=key_id,
        key_prefix="gw-bench",
        key_name="bench",
        tenant_id=1,
        tenant_slug="bench",
        team_id=1,
        team_slug="load",
        allowed_models=None,
        residency_region="",
        expires_at=None,
        revoked=False,
    )


def _table() -> PromptTable:
    versions = {
        n: CompiledVersion(
            number=n,
            messages=compile_messages([{"role": "system", "content": f"v{n}. {TEMPLATE}"}]),
            parameters={"temperature": 0.2},
            model="bench",
        )
        for n in (1, 2)
    }
    labels = {"production": LabelTarget(1), "canary": LabelTarget(1, 2, 10)}
    return PromptTable(
        prompts={(1, "advisor"): PromptEntry("advisor", versions, labels)},
        key_pins={(2, "advisor"): 2},
        team_pins={},
    )


SCENARIOS: dict[str, tuple[dict[str, str], dict[str, Any], int]] = {
    # name: (headers, extra body, key id)
    "no prompt (baseline)": ({}, {}, 1),
    "own system prompt (fingerprint)": (
        {},
        {"messages": [{"role": "system", "content": TEMPLATE}, {"role": "user", "content": "hi"}]},
        1,
    ),
    "label, 3 variables": ({"x-gateway-prompt": "advisor@production"}, {}, 1),
    "canary label, sticky": ({"x-gateway-prompt": "advisor@canary"}, {"user": "advisor-17"}, 1),
    "pinned key": ({"x-gateway-prompt": "advisor@production"}, {}, 2),
}


async def _measure(iterations: int) -> list[Timing]:
    cache = Snapshot(_table, ttl_seconds=3600, name="benchmark prompt table")
    await cache.get()  # warm, as a worker's registry is after its first prompt request
    runtime = cast(GatewayRuntime, SimpleNamespace(prompts=cache))  # all the step reads
    factory = RequestFactory()
    timings = []
    for name, (headers, extra, key_id) in SCENARIOS.items():
        body: dict[str, Any] = {
            "model": "bench",
            "messages": [{"role": "user", "content": "How is my portfolio allocated?"}],
            **extra,
        }
        if headers:
            body["prompt_variables"] = {"firm": "Acme", "client": "Ms Smith", "topic": "bonds"}
        request = factory.post(
            "/v1/chat/completions",
            orjson.dumps(body),
            content_type="application/json",
            headers=headers,
        )
        caller = Caller(runtime, _identity(key_id), request.headers, "req_benchmark")
        raw = parse_json_body(request)
        samples = []
        for _ in range(iterations):
            begun = time.perf_counter_ns()
            await prompt_apply(caller, raw)
            samples.append((time.perf_counter_ns() - begun) / 1000)
        samples.sort()
        timings.append(
            Timing(
                name,
                round(statistics.median(samples), 2),
                round(samples[int(len(samples) * 0.99) - 1], 2),
            )
        )
    return timings


def measure(iterations: int = 20000) -> list[Timing]:
    return asyncio.run(_measure(iterations))
