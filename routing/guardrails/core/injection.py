"""Prompt-injection detection behind one small interface.

A detector scores normalised text from 0 (benign) to 1 (certainly an attack) and says why.
The rule detector ships; a local classifier can be added by implementing `Detector` and
registering it under a name a policy lists (its weights loaded from a local path at start-up,
never fetched from a model hub).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from routing.guardrails.core.injection_rules import RULES, RULESET_VERSION, Rule
from routing.guardrails.core.normalise import Normalised, normalise

# Hiding instructions in base64 or hex is itself a signal.
_OBFUSCATION_BONUS = 0.15
# Characters around a trigger searched by its rule: longer than any rule's match.
_REACH = 320
_MAX_SPOTS = 24


@dataclass(frozen=True, slots=True)
class Verdict:
    score: float
    detector: str
    version: str
    rules: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    obfuscated: bool = False


class Detector(Protocol):
    name: str
    version: str

    def score(self, text: Normalised) -> Verdict: ...


def _search(rule: Rule, text: str) -> bool:
    """The rule's regex, run only around where its triggers occur (every trigger is part of
    what the rule matches, and no rule matches more than _REACH characters on either side)."""
    spots = []
    for trigger in (*rule.words, *rule.substrings):
        at = text.find(trigger)
        while at >= 0:
            spots.append(at)
            if len(spots) > _MAX_SPOTS:
                return rule.regex.search(text) is not None
            at = text.find(trigger, at + 1)
    if not rule.words and not rule.substrings:
        return rule.regex.search(text) is not None
    searched = -1  # the search windows overlap: extend the last one instead of starting over
    for at in sorted(spots):
        end = at + _REACH
        if end <= searched:
            continue
        if rule.regex.search(text, max(0, at - _REACH), end) is not None:
            return True
        searched = end
    return False


@dataclass
class RuleDetector:
    rules: tuple[Rule, ...] = RULES
    version: str = RULESET_VERSION
    name: str = "rules"

    def _matches(self, text: str, candidates: list[Rule]) -> list[Rule]:
        return [rule for rule in candidates if _search(rule, text)]

    def score(self, text: Normalised) -> Verdict:
        # Most rules' trigger words are absent from most prompts: their regexes never run.
        words, ascii_only = text.words, text.text.isascii()
        candidates = [
            rule
            for rule in self.rules
            if not words.isdisjoint(rule.words)
            or any((s.isascii() or not ascii_only) and s in text.text for s in rule.substrings)
            or (text.decoded and any(s in d for d in text.decoded for s in rule.substrings))
        ]
        matched = self._matches(text.text, candidates)
        hidden: list[Rule] = []
        for decoded in text.decoded:
            hidden += self._matches(decoded, candidates)
        every = {rule.id: rule for rule in matched + hidden}.values()
        # Independent evidence combines like probabilities: 1 - prod(1 - w).
        remaining = 1.0
        for rule in every:
            remaining *= 1.0 - rule.weight
        score = 1.0 - remaining
        if hidden:
            score = min(1.0, score + _OBFUSCATION_BONUS)
        return Verdict(
            score=round(score, 3),
            detector=self.name,
            version=self.version,
            rules=tuple(sorted(rule.id for rule in every)),
            categories=tuple(sorted({rule.category for rule in every})),
            obfuscated=bool(hidden),
        )


@dataclass
class DetectorSet:
    """The detectors a process knows, by name; a policy picks among them."""

    detectors: dict[str, Detector] = field(default_factory=lambda: {"rules": RuleDetector()})

    def register(self, detector: Detector) -> None:
        self.detectors[detector.name] = detector

    def score(self, text: str, names: Iterable[str]) -> Verdict:
        """The highest score of the named detectors (unknown names are skipped)."""
        normalised = normalise(text)
        best = Verdict(0.0, "none", "")
        for name in names:
            detector = self.detectors.get(name)
            if detector is None:
                continue
            verdict = detector.score(normalised)
            if verdict.score > best.score or best.detector == "none":
                best = verdict
        return best


def describe(verdict: Verdict) -> Mapping[str, object]:
    return {
        "score": verdict.score,
        "detector": verdict.detector,
        "ruleset": verdict.version,
        "rules": list(verdict.rules),
        "categories": list(verdict.categories),
        "obfuscated": verdict.obfuscated,
    }
