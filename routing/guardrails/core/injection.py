"""Prompt-injection detection behind one small interface.

A detector scores normalised text from 0 (benign) to 1 (certainly an attack) and says why.
Two ship: the rules (known phrasings, named, explainable) and the classifier (a linear model
over character n-grams whose weights are in the repository; it catches rephrasings the rules
miss). A policy names the detectors it uses; their scores combine into one, compared with the
policy's threshold.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from routing.guardrails.core.injection_rules import RULES, RULESET_VERSION, Rule
from routing.guardrails.core.normalise import Normalised, normalise

if TYPE_CHECKING:
    # numpy and the weights load with the first policy that uses the classifier.
    from routing.guardrails.core.classifier import InjectionModel

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
    # Each detector's own score, by name, when several were combined.
    scores: tuple[tuple[str, float], ...] = ()


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


# A classifier score this high is reported as its own category (it found what no rule names).
_CLASSIFIER_CATEGORY_AT = 0.5


@functools.cache
def shipped_model() -> InjectionModel:
    from routing.guardrails.core.classifier import InjectionModel

    return InjectionModel.load()


@dataclass
class ClassifierDetector:
    model: InjectionModel = field(default_factory=shipped_model)
    name: str = "classifier"
    version: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.version = self.model.version

    def score(self, text: Normalised) -> Verdict:
        # Hidden (base64, hex) text is scored too: the rules already add for hiding it.
        score = max([self.model.probability(text.text), *map(self.model.probability, text.decoded)])
        return Verdict(
            score=round(score, 3),
            detector=self.name,
            version=self.version,
            categories=("classifier",) if score >= _CLASSIFIER_CATEGORY_AT else (),
        )


def _default_detectors() -> dict[str, Detector]:
    return {"rules": RuleDetector(), "classifier": ClassifierDetector()}


@dataclass
class DetectorSet:
    """The detectors a process knows, by name; a policy picks among them."""

    detectors: dict[str, Detector] = field(default_factory=_default_detectors)

    def register(self, detector: Detector) -> None:
        self.detectors[detector.name] = detector

    def score(self, text: str, names: Iterable[str]) -> Verdict:
        """The named detectors' scores combined as independent evidence, 1 - prod(1 - s), the
        way the rules' weights combine (unknown names are skipped)."""
        normalised = normalise(text)
        verdicts = [
            self.detectors[name].score(normalised) for name in names if name in self.detectors
        ]
        if not verdicts:
            return Verdict(0.0, "none", "")
        if len(verdicts) == 1:
            return verdicts[0]
        remaining = 1.0
        for verdict in verdicts:
            remaining *= 1.0 - verdict.score
        return Verdict(
            score=round(1.0 - remaining, 3),
            detector="+".join(v.detector for v in verdicts),
            version="+".join(v.version for v in verdicts),
            rules=tuple(sorted({r for v in verdicts for r in v.rules})),
            categories=tuple(sorted({c for v in verdicts for c in v.categories})),
            obfuscated=any(v.obfuscated for v in verdicts),
            scores=tuple((v.detector, v.score) for v in verdicts),
        )


def describe(verdict: Verdict) -> Mapping[str, object]:
    return {
        "score": verdict.score,
        "detector": verdict.detector,
        "ruleset": verdict.version,
        "rules": list(verdict.rules),
        "categories": list(verdict.categories),
        "obfuscated": verdict.obfuscated,
        **({"scores": dict(verdict.scores)} if verdict.scores else {}),
    }
