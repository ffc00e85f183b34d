"""Measures the shipped injection detectors on the corpus's held-out split.

    python scripts/injection_eval.py [--runs 200] [--json]

Precision, recall and false-positive rate at the policy's default threshold (0.5), overall,
per category and per language, for the rules alone, the classifier alone and the two combined
(the score a policy with `detectors: [rules, classifier]` compares with its threshold); then
the CPU time of the checks on a 2,000-token prompt. The held-out split is built from corpora
neither the rules nor the classifier were fitted to (routing/guardrails/training/corpus.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from routing.guardrails.core.injection import DetectorSet
from routing.guardrails.training.corpus import Row, read

THRESHOLD = 0.5
DETECTORS: dict[str, tuple[str, ...]] = {
    "rules": ("rules",),
    "classifier": ("classifier",),
    "combined": ("rules", "classifier"),
}


@dataclass(frozen=True)
class Counts:
    attacks: int = 0
    caught: int = 0
    benign: int = 0
    flagged: int = 0

    def add(self, label: int, hit: bool) -> Counts:
        if label:
            return Counts(self.attacks + 1, self.caught + hit, self.benign, self.flagged)
        return Counts(self.attacks, self.caught, self.benign + 1, self.flagged + hit)

    @property
    def recall(self) -> float | None:
        return self.caught / self.attacks if self.attacks else None

    @property
    def fpr(self) -> float | None:
        return self.flagged / self.benign if self.benign else None

    @property
    def precision(self) -> float | None:
        hits = self.caught + self.flagged
        return self.caught / hits if hits else None

    def as_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {
            "attacks": self.attacks,
            "benign": self.benign,
            "precision": r(self.precision),
            "recall": r(self.recall),
            "fpr": r(self.fpr),
        }


def scores(rows: Iterable[Row], detectors: DetectorSet | None = None) -> list[dict[str, float]]:
    detectors = detectors or DetectorSet()
    return [
        {name: detectors.score(row.text, names).score for name, names in DETECTORS.items()}
        for row in rows
    ]


def quality(
    rows: list[Row], scored: list[dict[str, float]], threshold: float = THRESHOLD
) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for name in DETECTORS:
        overall = Counts()
        by_category: dict[str, Counts] = defaultdict(Counts)
        by_language: dict[str, Counts] = defaultdict(Counts)
        for row, score in zip(rows, scored, strict=True):
            hit = score[name] >= threshold
            overall = overall.add(row.label, hit)
            by_category[row.category] = by_category[row.category].add(row.label, hit)
            by_language[row.lang] = by_language[row.lang].add(row.label, hit)
        report[name] = {
            "overall": overall.as_dict(),
            "by_category": {k: v.as_dict() for k, v in sorted(by_category.items())},
            "by_language": {k: v.as_dict() for k, v in sorted(by_language.items())},
        }
    return report


def _cpu_ms(function: Callable[[], Any], runs: int) -> float:
    for _ in range(max(5, runs // 10)):
        function()
    samples = []
    for _ in range(runs):
        begun = time.thread_time()
        function()
        samples.append((time.thread_time() - begun) * 1000)
    return round(statistics.median(samples), 3)


def latency(runs: int) -> dict[str, float]:
    """CPU milliseconds, p50, of each check on a 2,000-token prompt (bench/guardrails.py's)."""
    from bench.guardrails import prompt
    from routing.guardrails.core.checks import check_request
    from routing.guardrails.core.pii import PiiScanner
    from routing.guardrails.core.policy import PolicySpec, compile_policy

    scanner, detectors = PiiScanner(), DetectorSet()
    payload = {"model": "m", "messages": [{"role": "user", "content": prompt()}]}

    def policy(**spec: Any) -> Any:
        return compile_policy("eval", PolicySpec.model_validate(spec))

    rules = policy(injection={"detectors": ["rules"]})
    classifier = policy(injection={"detectors": ["classifier"]})
    combined = policy(injection={"detectors": ["rules", "classifier"]})
    everything = policy(pii={}, injection={"detectors": ["rules", "classifier"]})
    return {
        "injection rules": _cpu_ms(lambda: check_request(rules, payload, None, detectors), runs),
        "injection classifier": _cpu_ms(
            lambda: check_request(classifier, payload, None, detectors), runs
        ),
        "rules + classifier": _cpu_ms(
            lambda: check_request(combined, payload, None, detectors), runs
        ),
        "PII + rules + classifier": _cpu_ms(
            lambda: check_request(everything, payload, scanner, detectors), runs
        ),
    }


def evaluate(split: str = "held_out", runs: int = 200) -> dict[str, Any]:
    rows = [r for r in read() if r.split == split]
    detectors = DetectorSet()
    report = {
        "split": split,
        "threshold": THRESHOLD,
        "model": detectors.detectors["classifier"].version,
        "ruleset": detectors.detectors["rules"].version,
        "quality": quality(rows, scores(rows, detectors)),
    }
    if runs:
        report["cpu_ms_p50_2000_tokens"] = latency(runs)
    return report


def _fmt(x: float | None) -> str:
    return "   -  " if x is None else f"{x:6.3f}"


def print_report(report: dict[str, Any]) -> None:
    print(f"split {report['split']}; model {report['model']}; ruleset {report['ruleset']}")
    print(f"threshold {report['threshold']}")
    for name, result in report["quality"].items():
        o = result["overall"]
        print(
            f"\n== {name}: precision {_fmt(o['precision'])} recall {_fmt(o['recall'])} "
            f"FPR {_fmt(o['fpr'])} ({o['attacks']} attacks, {o['benign']} benign)"
        )
        for section in ("by_category", "by_language"):
            print(f"  {section.replace('_', ' ')}:")
            for key, c in result[section].items():
                print(
                    f"    {key:22} attacks {c['attacks']:4} recall {_fmt(c['recall'])}   "
                    f"benign {c['benign']:4} FPR {_fmt(c['fpr'])}"
                )
    for name, ms in report.get("cpu_ms_p50_2000_tokens", {}).items():
        print(f"{name:28} {ms:7.3f} ms CPU p50 (2,000-token prompt)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="held_out", choices=["held_out", "project_held_out"])
    parser.add_argument("--runs", type=int, default=200, help="latency samples; 0 skips")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = evaluate(args.split, args.runs)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
