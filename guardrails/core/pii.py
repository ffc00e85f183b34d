"""Finding PII with Presidio, offline, fast enough for the hot path.

The analyzer is built once per process (`PiiScanner`). By default it has no NLP model at all
(`NoOpNlpEngine`): pattern and checksum recognizers only, no download. When a spaCy model is
installed and named, names and locations are found too (over the whole text, slower).

Speed: every structured entity the default recognizers find carries a digit or an '@'. Instead of
running ~20 regexes and the phone-number matcher over a 10 kB prompt, only the windows around
such characters are analysed, in one Presidio call over their concatenation. A prompt of prose
with a few identifiers costs a fraction of a millisecond; a prompt full of numbers costs what a
plain Presidio call costs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from guardrails.core.offline import make_tldextract_offline
from guardrails.core.policy import CustomRecognizer

logger = logging.getLogger(__name__)

# Entity types whose every match holds a digit or '@' (so the window pre-filter is exact).
WINDOWED_ENTITIES = frozenset(
    {
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "CREDIT_CARD",
        "IBAN_CODE",
        "US_SSN",
        "US_ITIN",
        "US_BANK_NUMBER",
        "US_PASSPORT",
        "US_DRIVER_LICENSE",
        "UK_NHS",
        "IP_ADDRESS",
        "MEDICAL_LICENSE",
    }
)
NER_ENTITIES = frozenset({"PERSON", "LOCATION", "NRP", "ORGANIZATION"})
_TRIGGER = re.compile(r"\S*[0-9@]\S*")
_REACH = 40  # characters of context on each side of a trigger (a spaced IBAN is 34)
_SEPARATOR = "\n\x00\n"  # no recognizer matches across a NUL


@dataclass(frozen=True, slots=True)
class Span:
    entity: str
    start: int
    end: int
    score: float


def _windows(text: str) -> list[tuple[int, int]]:
    windows: list[tuple[int, int]] = []
    for match in _TRIGGER.finditer(text):
        start, end = max(0, match.start() - _REACH), min(len(text), match.end() + _REACH)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(end, windows[-1][1]))
        else:
            windows.append((start, end))
    return windows


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """Keep the best of overlapping findings: the higher score, then the longer span."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start)):
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


class PiiScanner:
    """One Presidio analyzer per process; `find` is thread-safe (recognizers keep no state)."""

    def __init__(self, *, spacy_model: str | None = None) -> None:
        make_tldextract_offline()
        # Presidio logs at INFO on every call (too chatty and too slow for the hot path) and
        # warns at start-up about every recognizer of a language we did not ask for.
        logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngine, NoOpNlpEngine, SpacyNlpEngine

        nlp: NlpEngine
        if spacy_model:
            nlp = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": spacy_model}])
        else:
            nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
        nlp.load()
        registry = RecognizerRegistry(supported_languages=["en"])
        registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp)
        self.ner = bool(spacy_model)
        self.analyzer = AnalyzerEngine(
            nlp_engine=nlp, registry=registry, supported_languages=["en"]
        )
        self.supported = frozenset(self.analyzer.get_supported_entities("en"))

    def find(
        self,
        text: str,
        entities: Sequence[str],
        *,
        min_score: float,
        custom: Sequence[CustomRecognizer] = (),
    ) -> list[Span]:
        spans: list[Span] = []
        windowed = [e for e in entities if e in WINDOWED_ENTITIES and e in self.supported]
        whole = [
            e
            for e in entities
            if e not in WINDOWED_ENTITIES
            and e in self.supported
            and (self.ner or e not in NER_ENTITIES)
        ]
        if windowed:
            spans += self._find_in_windows(text, windowed)
        if whole:
            spans += self._analyze(text, whole, 0)
        for recognizer in custom:
            if recognizer.entity in entities:
                spans += (
                    Span(recognizer.entity, m.start(), m.end(), recognizer.score)
                    for m in recognizer.regex.finditer(text)
                    if m.end() > m.start()
                )
        return resolve_overlaps(s for s in spans if s.score >= min_score)

    def _find_in_windows(self, text: str, entities: list[str]) -> list[Span]:
        windows = _windows(text)
        if not windows:
            return []
        if len(windows) == 1:
            start, end = windows[0]
            return self._analyze(text[start:end], entities, start)
        # One Presidio call over the windows joined: its per-call overhead dominates otherwise.
        joined, offsets, at = [], [], 0
        for start, end in windows:
            offsets.append((at, at + end - start, start))
            joined.append(text[start:end])
            at += end - start + len(_SEPARATOR)
        spans = []
        for span in self._analyze(_SEPARATOR.join(joined), entities, 0):
            for piece_start, piece_end, origin in offsets:
                if piece_start <= span.start < piece_end:
                    delta = origin - piece_start
                    end = min(span.end, piece_end)
                    spans.append(Span(span.entity, span.start + delta, end + delta, span.score))
                    break
        return spans

    def _analyze(self, text: str, entities: list[str], offset: int) -> list[Span]:
        results: list[Any] = self.analyzer.analyze(text=text, language="en", entities=entities)
        return [Span(r.entity_type, r.start + offset, r.end + offset, r.score) for r in results]
