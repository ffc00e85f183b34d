"""Precision and recall of the injection rules on the labelled set (docs/benchmarks.md).

`pytest tests/guardrails/test_injection_set.py -s` prints the numbers and any misses.
"""

from __future__ import annotations

from typing import Any

from guardrails.core.injection import DetectorSet
from guardrails.core.injection_rules import RULESET_VERSION
from tests.guardrails.injection_set import ATTACKS, BENIGN

THRESHOLD = 0.5  # the policy default


def measure(threshold: float = THRESHOLD) -> dict[str, Any]:
    detectors = DetectorSet()
    missed = [p for p in ATTACKS if detectors.score(p, ["rules"]).score < threshold]
    false_alarms = [p for p in BENIGN if detectors.score(p, ["rules"]).score >= threshold]
    caught = len(ATTACKS) - len(missed)
    return {
        "precision": caught / (caught + len(false_alarms)),
        "recall": caught / len(ATTACKS),
        "missed": missed,
        "false_alarms": false_alarms,
    }


def test_the_labelled_set_is_large_and_has_both_classes() -> None:
    assert len(ATTACKS) + len(BENIGN) >= 200
    assert min(len(ATTACKS), len(BENIGN)) >= 100
    assert not set(ATTACKS) & set(BENIGN)


def test_the_rules_catch_injections_without_flagging_ordinary_work() -> None:
    result = measure()
    print(
        f"\nruleset {RULESET_VERSION}: {len(ATTACKS)} attacks, {len(BENIGN)} benign; "
        f"precision {result['precision']:.3f}, recall {result['recall']:.3f}"
    )
    for prompt in result["missed"]:
        print("  missed:", prompt)
    for prompt in result["false_alarms"]:
        print("  false alarm:", prompt)
    # Floors a little under the measured values: a rule change that loses ground fails here.
    assert result["precision"] >= 0.97
    assert result["recall"] >= 0.95
