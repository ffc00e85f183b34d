"""The shipped calibration sets at the default threshold: the issue's bar for the semantic cache."""

from __future__ import annotations

from routing.cache.core.calibration import SHIPPED_SETS, load_pairs, score, table
from routing.cache.core.policy import DEFAULT_SIMILARITY


def test_the_default_threshold_keeps_false_hits_under_one_percent():
    from routing.cache.core.embedder import WordLlamaEmbedder

    pairs = [pair for path in SHIPPED_SETS for pair in load_pairs(path)]
    assert sum(not p.same for p in pairs) >= 150
    (row,) = table(score(pairs, WordLlamaEmbedder()), thresholds=(DEFAULT_SIMILARITY,))
    assert row.false_hit_rate < 0.01
    assert row.hit_rate >= 0.6
