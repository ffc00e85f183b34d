"""How often the semantic cache would serve a paraphrase, and how often a wrong answer.

A labelled set of question pairs: `same` pairs are paraphrases a cached answer may serve; the
others are near misses it must not (another account, year or period, the opposite intent, a
neighbouring topic). A pair hits at a threshold when both questions fall in one partition (the
same names, numbers, negation and contrasting words; keys.py), differ by more than one swapped
word, and their similarity reaches the threshold.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routing.cache.core.embedder import Embedder
from routing.cache.core.keys import RequestKeys, one_word_swapped, request_keys

_DATA = Path(__file__).resolve().parent.parent / "data"
# Written in this order: the first shaped the partition's guard, the second was read once and
# then shaped the one-swapped-word rule and ordered literals, the third was scored once, blind.
SHIPPED_SETS = (
    _DATA / "calibration.jsonl",
    _DATA / "calibration_holdout.jsonl",
    _DATA / "calibration_test.jsonl",
    _DATA / "calibration_blind.jsonl",
)
THRESHOLDS = (0.80, 0.85, 0.88, 0.90, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98)


@dataclass(frozen=True, slots=True)
class Pair:
    a: str
    b: str
    same: bool
    kind: str


@dataclass(frozen=True, slots=True)
class Scored:
    pair: Pair
    similarity: float
    candidates: bool  # in the same partition


@dataclass(frozen=True, slots=True)
class Row:
    threshold: float
    hits: int
    paraphrases: int
    false_hits: int
    near_misses: int
    # What the embedding alone would serve, without the partition's literal guard.
    false_hits_by_similarity_alone: int

    @property
    def hit_rate(self) -> float:
        return self.hits / self.paraphrases if self.paraphrases else 0.0

    @property
    def false_hit_rate(self) -> float:
        return self.false_hits / self.near_misses if self.near_misses else 0.0


def load_pairs(path: Path) -> list[Pair]:
    pairs = []
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            pairs.append(Pair(row["a"], row["b"], bool(row["same"]), row.get("kind", "")))
    return pairs


def _keys(text: str) -> RequestKeys:
    payload = {"messages": [{"role": "user", "content": text}]}
    return request_keys(
        tenant_id=1,
        scope="",
        route="calibration",
        prompt_name="",
        prompt_version=None,
        deployments=("model",),
        payload=payload,
    )


def score(pairs: Iterable[Pair], embedder: Embedder) -> list[Scored]:
    """Each pair as the cache sees it: the same keys and embedded text as a request."""
    scored = []
    for pair in pairs:
        a, b = _keys(pair.a), _keys(pair.b)
        similarity = float(np.dot(embedder.embed(a.text), embedder.embed(b.text)))
        candidates = a.partition == b.partition and not one_word_swapped(a.terms, b.terms)
        scored.append(Scored(pair, similarity, candidates))
    return scored


def table(scored: Sequence[Scored], thresholds: Iterable[float] = THRESHOLDS) -> list[Row]:
    rows = []
    same = [s for s in scored if s.pair.same]
    other = [s for s in scored if not s.pair.same]
    for threshold in thresholds:
        rows.append(
            Row(
                threshold=threshold,
                hits=sum(s.candidates and s.similarity >= threshold for s in same),
                paraphrases=len(same),
                false_hits=sum(s.candidates and s.similarity >= threshold for s in other),
                near_misses=len(other),
                false_hits_by_similarity_alone=sum(s.similarity >= threshold for s in other),
            )
        )
    return rows


def best_threshold(rows: Sequence[Row], max_false_hit_rate: float = 0.01) -> Row | None:
    """The lowest threshold (most hits) whose false-hit rate is under the limit."""
    allowed = [r for r in rows if r.false_hit_rate < max_false_hit_rate]
    return min(allowed, key=lambda r: r.threshold) if allowed else None
