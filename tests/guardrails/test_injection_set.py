"""Precision and recall of the injection rules on the labelled set (docs/benchmarks.md).

`pytest tests/guardrails/test_injection_set.py -s` prints the numbers and any misses.
"""

from __future__ import annotations

from typing import Any

from routing.guardrails.core.injection import DetectorSet
from routing.guardrails.core.injection_rules import RULESET_VERSION
from tests.guardrails.injection_set import ATTACKS, BENIGN, HELD_OUT_ATTACKS, HELD_OUT_BENIGN

THRESHOLD = 0.5  # the policy default


def measure(
    threshold: float = THRESHOLD,
    attacks: list[str] = ATTACKS,
    benign: list[str] = BENIGN,
) -> dict[str, Any]:
    detectors = DetectorSet()
    missed = [p for p in attacks if detectors.score(p, ["rules"]).score < threshold]
    false_alarms = [p for p in benign if detectors.score(p, ["rules"]).score >= threshold]
    caught = len(attacks) - len(missed)
    return {
        "precision": caught / max(1, caught + len(false_alarms)),
        "recall": caught / len(attacks),
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


def test_the_held_out_prompts_are_reported_separately() -> None:
    result = measure(attacks=HELD_OUT_ATTACKS, benign=HELD_OUT_BENIGN)
    print(
        f"\nheld out: {len(HELD_OUT_ATTACKS)} attacks, {len(HELD_OUT_BENIGN)} benign; "
        f"precision {result['precision']:.3f}, recall {result['recall']:.3f}"
    )
    for prompt in result["missed"]:
        print("  missed:", prompt)
    for prompt in result["false_alarms"]:
        print("  false alarm:", prompt)
    # No floor worth tuning towards: these exist to show how the rules do on unseen text.
    assert not set(HELD_OUT_ATTACKS) & set(ATTACKS + BENIGN + HELD_OUT_BENIGN)
