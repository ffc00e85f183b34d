"""Finding PII with Presidio, offline, fast enough for the hot path.

The analyzer is built once per process (`PiiScanner`). By default it has no NLP model at all
(`NoOpNlpEngine`): pattern and checksum recognizers only, no download. When a spaCy model is
installed and named, names and locations are found too (over the whole text, slower).

Speed: every structured entity of WINDOWED_ENTITIES holds an '@' (e-mail) or a run of at least
seven digits and separators (cards, IBANs, SSNs, phones, IPv4, account and licence numbers).
Instead of running the recognizers and the phone-number matcher over a whole 10 kB prompt, only
the windows around such places are analysed, in one Presidio call over their concatenation. A
prompt of prose with a few identifiers costs about a millisecond; a prompt full of long numbers
costs what a plain Presidio call costs. An IPv6 address needs a run like "4567:890a" to be seen.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from routing.guardrails.core.offline import make_tldextract_offline
from routing.guardrails.core.policy import CustomRecognizer

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
# Starts with a digit, so the regex engine skips prose quickly.
_DIGIT_RUN = re.compile(r"[0-9][0-9 ().+:/-]{5,}[0-9]")
_REACH = 40  # characters of context on each side of a digit run (a spaced IBAN is 34)
_PHONE_REACH = 4  # "+1 " or "(0)" before a run
_EMAIL_REACH = 80  # an address's local part and domain around its '@'
_SEPARATOR = "\n\x00\n"  # no recognizer matches across a NUL


# National formats recognised for phone numbers; any number written with +country code is found.
PHONE_REGIONS = ("US", "GB", "DE")


def _no_context() -> Any:
    """Presidio's context enhancer, minus the work it cannot do without an NLP model (there are
    no tokens to find context words in; it would only deep-copy every result)."""
    from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer

    class NoContext(ContextAwareEnhancer):
        def enhance_using_context(self, text: str, raw_results: Any, *args: Any, **kw: Any) -> Any:
            return raw_results

    return NoContext(0.0, 0.0, 0, 0)


@dataclass(frozen=True, slots=True)
class Span:
    entity: str
    start: int
    end: int
    score: float


def _merged(spots: list[tuple[int, int]]) -> list[tuple[int, int]]:
    windows: list[tuple[int, int]] = []
    for start, end in sorted(spots):
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(end, windows[-1][1]))
        else:
            windows.append((start, end))
    return windows


def _windows(text: str, *, digits: bool, at_signs: bool) -> list[tuple[int, int]]:
    spots: list[tuple[int, int]] = []
    if digits:
        spots += (
            (max(0, m.start() - _REACH), min(len(text), m.end() + _REACH))
            for m in _DIGIT_RUN.finditer(text)
        )
    if at_signs:
        at = text.find("@")
        while at >= 0:
            spots.append((max(0, at - _EMAIL_REACH), min(len(text), at + _EMAIL_REACH)))
            at = text.find("@", at + 1)
    return _merged(spots)


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """Keep the best of overlapping findings: the higher score, then the longer span."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start)):
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


class PiiScanner:
    """One Presidio analyzer per process; `find` is thread-safe (recognizers keep no state)."""

    def __init__(
        self, *, spacy_model: str | None = None, phone_regions: Sequence[str] = PHONE_REGIONS
    ) -> None:
        make_tldextract_offline()
        # Presidio logs at INFO on every call (too chatty and too slow for the hot path) and
        # warns at start-up about every recognizer of a language we did not ask for.
        logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngine, NoOpNlpEngine, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import PhoneRecognizer

        nlp: NlpEngine
        if spacy_model:
            nlp = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": spacy_model}])
        else:
            nlp = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
        nlp.load()
        registry = RecognizerRegistry(supported_languages=["en"])
        registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp)
        # Each region is a full parse of every candidate: keep the list short.
        registry.remove_recognizer("PhoneRecognizer")
        registry.add_recognizer(PhoneRecognizer(supported_regions=tuple(phone_regions)))
        self.ner = bool(spacy_model)
        self.analyzer = AnalyzerEngine(
            nlp_engine=nlp,
            registry=registry,
            supported_languages=["en"],
            context_aware_enhancer=None if spacy_model else _no_context(),
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
        emails = "EMAIL_ADDRESS" in entities
        others = [e for e in entities if e != "PHONE_NUMBER"]
        spans = self._analyze_windows(
            text, _windows(text, digits=len(others) > emails, at_signs=emails), others
        )
        if "PHONE_NUMBER" in entities:
            # The phone matcher is by far the slowest recognizer (it parses every candidate
            # for several regions): give it only the digit runs nothing else has claimed.
            runs = [
                (max(0, m.start() - _PHONE_REACH), min(len(text), m.end() + _PHONE_REACH))
                for m in _DIGIT_RUN.finditer(text)
                if not any(s.start <= m.start() and m.end() <= s.end for s in spans)
            ]
            spans += self._analyze_windows(text, _merged(runs), ["PHONE_NUMBER"])
        return spans

    def _analyze_windows(
        self, text: str, windows: list[tuple[int, int]], entities: list[str]
    ) -> list[Span]:
        if not windows or not entities:
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
