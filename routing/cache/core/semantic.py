"""Nearest neighbours among cached questions, per partition (tenant scope + non-text parameters).

Brute force over one partition's unit vectors: a partition holds one tenant's questions for one
route and parameter set, where an exact scan of 10,000 vectors takes about a millisecond and
needs no index upkeep on expiry or purge. The scan uses `einsum`, not a BLAS matrix product: on
a busy machine BLAS threads wait for cores and a 0.4 ms product took 10 ms.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from routing.cache.core.embedder import Vector

_FIRST_CAPACITY = 16


@dataclass(frozen=True, slots=True)
class Neighbour:
    key: str  # the exact key of the answer it points to
    similarity: float


@dataclass(slots=True)
class _Partition:
    dim: int
    keys: list[str] = field(default_factory=list)
    terms: list[frozenset[str]] = field(default_factory=list)
    positions: dict[str, int] = field(default_factory=dict)
    vectors: NDArray[np.float32] = field(init=False)
    expires: NDArray[np.float64] = field(init=False)

    def __post_init__(self) -> None:
        self.vectors = np.zeros((_FIRST_CAPACITY, self.dim), dtype=np.float32)
        self.expires = np.zeros(_FIRST_CAPACITY, dtype=np.float64)

    def add(self, key: str, vector: Vector, expires_at: float, terms: frozenset[str]) -> None:
        at = self.positions.get(key)
        if at is not None:  # the same question stored again: its new expiry
            self.expires[at] = expires_at
            return
        if len(self.keys) == len(self.expires):
            self._make_room()
        at = len(self.keys)
        self.vectors[at] = vector
        self.expires[at] = expires_at
        self.keys.append(key)
        self.terms.append(terms)
        self.positions[key] = at

    def _make_room(self) -> None:
        """Drop what expired; if that frees less than a quarter, double the capacity."""
        size = len(self.keys)
        alive = np.flatnonzero(self.expires[:size] > time.time())
        capacity = len(self.expires) * (2 if len(alive) > 0.75 * size else 1)
        vectors = np.zeros((capacity, self.dim), dtype=np.float32)
        expires = np.zeros(capacity, dtype=np.float64)
        vectors[: len(alive)] = self.vectors[alive]
        expires[: len(alive)] = self.expires[alive]
        self.vectors, self.expires = vectors, expires
        self.keys = [self.keys[i] for i in alive]
        self.terms = [self.terms[i] for i in alive]
        self.positions = {key: i for i, key in enumerate(self.keys)}

    def nearest(
        self, vector: Vector, threshold: float, refuse: Callable[[frozenset[str]], bool] | None
    ) -> Neighbour | None:
        size = len(self.keys)
        if not size:
            return None
        scores = np.einsum("ij,j->i", self.vectors[:size], vector)
        scores[self.expires[:size] <= time.time()] = -np.inf
        above = np.flatnonzero(scores >= threshold)
        for index in above[np.argsort(-scores[above])]:
            if refuse is None or not refuse(self.terms[index]):
                return Neighbour(self.keys[index], float(scores[index]))
        return None


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
        part = self._partitions.get(partition)
        if part is None:
            part = self._partitions[partition] = _Partition(dim=int(vector.shape[0]))
        part.add(key, vector, expires_at, terms)

    def nearest(
        self,
        partition: str,
        vector: Vector,
        threshold: float,
        refuse: Callable[[frozenset[str]], bool] | None = None,
    ) -> Neighbour | None:
        """The most similar live question at or above `threshold` that `refuse` (given its
        terms) does not rule out, if any."""
        part = self._partitions.get(partition)
        return None if part is None else part.nearest(vector, threshold, refuse)

    def forget(self, key: str) -> None:
        """An answer that is gone (purged, expired early): its question no longer leads to it."""
        for part in self._partitions.values():
            at = part.positions.get(key)
            if at is not None:
                part.expires[at] = 0.0
