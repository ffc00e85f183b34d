"""Nearest neighbours among cached questions, per partition (tenant scope + non-text parameters).

Brute force over one partition's unit vectors with numpy: a partition holds one tenant's
questions for one route and parameter set, a few thousand at most, where a matrix product takes
well under a millisecond and needs no index maintenance on delete or expiry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from response_cache.core.embedder import Vector


@dataclass(frozen=True, slots=True)
class Neighbour:
    key: str  # the exact key of the answer it points to
    similarity: float


@dataclass(slots=True)
class _Partition:
    keys: list[str] = field(default_factory=list)
    expires: list[float] = field(default_factory=list)
    terms: list[frozenset[str]] = field(default_factory=list)
    vectors: NDArray[np.float32] | None = None

    def add(self, key: str, vector: Vector, expires_at: float, terms: frozenset[str]) -> None:
        if key in self.keys:  # the same question stored again: newer expiry, same vector
            self.expires[self.keys.index(key)] = expires_at
            return
        row = vector.reshape(1, -1)
        self.vectors = row if self.vectors is None else np.vstack([self.vectors, row])
        self.keys.append(key)
        self.expires.append(expires_at)
        self.terms.append(terms)

    def prune(self, now: float) -> None:
        alive = [i for i, expires in enumerate(self.expires) if expires > now]
        if len(alive) == len(self.keys):
            return
        self.keys = [self.keys[i] for i in alive]
        self.expires = [self.expires[i] for i in alive]
        self.terms = [self.terms[i] for i in alive]
        self.vectors = self.vectors[alive] if alive and self.vectors is not None else None


class SemanticIndex:
    def __init__(self) -> None:
        self._partitions: dict[str, _Partition] = {}

    def __len__(self) -> int:
        return sum(len(p.keys) for p in self._partitions.values())

    def add(
        self,
        partition: str,
        key: str,
        vector: Vector,
        expires_at: float,
        terms: frozenset[str] = frozenset(),
    ) -> None:
        self._partitions.setdefault(partition, _Partition()).add(key, vector, expires_at, terms)

    def nearest(
        self,
        partition: str,
        vector: Vector,
        threshold: float,
        refuse: Callable[[frozenset[str]], bool] | None = None,
    ) -> Neighbour | None:
        """The most similar live question at or above `threshold` that `refuse` (given its
        terms) does not rule out, if any."""
        found = self._partitions.get(partition)
        if found is None or found.vectors is None:
            return None
        found.prune(time.time())
        if found.vectors is None:
            return None
        scores = found.vectors @ vector
        for index in np.argsort(-scores):
            similarity = float(scores[index])
            if similarity < threshold:
                return None
            if refuse is None or not refuse(found.terms[index]):
                return Neighbour(found.keys[index], similarity)
        return None

    def forget(self, key: str) -> None:
        """An answer that is gone (purged, expired early): its question no longer leads to it."""
        for part in self._partitions.values():
            if key in part.keys:
                part.expires[part.keys.index(key)] = 0.0
