"""Nearest neighbours among cached questions, per partition (tenant scope + non-text parameters).

A partition is scanned exactly (`einsum` over its unit vectors) while it is small: 8,000
vectors take about a millisecond and need no index upkeep on expiry or purge. The scan uses
`einsum`, not a BLAS matrix product: on a busy machine BLAS threads wait for cores and a 0.4 ms
product took 10 ms. A scan reads every vector, though (100,000 x 256 floats is 100 MB: 5 ms on
an idle core, 17 ms on a loaded one), so a partition past `ANN_MIN` vectors is also searched
through an approximate (HNSW) index built off the event loop (`build_ann`, by the engine): the
index proposes the nearest `ANN_CANDIDATES`, and the vectors stored since the index was built
(the tail, kept under a tenth of the partition by rebuilding) are scanned exactly. Every
candidate is then scored exactly against the stored vector and checked for expiry, threshold
and refusal, so the index can only cause a miss, never a wrong hit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from routing.cache.core.embedder import Vector

_FIRST_CAPACITY = 16
ANN_MIN = 8_000  # below this, an exact scan is as fast as the index and needs no upkeep
ANN_CANDIDATES = 32  # proposals asked of the index per lookup
_TAIL_SHARE = 0.1  # rebuild once this share of the partition is not in its index


@dataclass(frozen=True, slots=True)
class Neighbour:
    key: str  # the exact key of the answer it points to
    similarity: float


@dataclass(frozen=True, slots=True)
class AnnJob:
    """What an index build needs, copied so the build can run in another thread."""

    partition: str
    serials: NDArray[np.int64]
    vectors: NDArray[np.float32]


def build_ann(job: AnnJob) -> Any:
    """An HNSW index (usearch, cosine) over the job's vectors, labelled by serial.
    Runs in a worker thread: usearch releases the GIL while it builds."""
    from usearch.index import Index

    # Eight-bit vectors: a build a third of float32's, a quarter of the memory, and the
    # proposals are rescored exactly anyway.
    index = Index(
        ndim=job.vectors.shape[1],
        metric="cos",
        dtype="i8",
        connectivity=16,
        expansion_add=64,
        expansion_search=64,
    )
    index.add(job.serials, job.vectors, threads=1)
    return index


@dataclass(slots=True)
class _Partition:
    dim: int
    keys: list[str] = field(default_factory=list)
    terms: list[frozenset[str]] = field(default_factory=list)
    positions: dict[str, int] = field(default_factory=dict)
    vectors: NDArray[np.float32] = field(init=False)
    expires: NDArray[np.float64] = field(init=False)
    # Each vector's label in the approximate index: increasing with its slot, kept through
    # compaction, so a label is found again by binary search.
    serials: NDArray[np.int64] = field(init=False)
    next_serial: int = 0
    ann: Any = None  # a usearch Index over the serials up to `ann_upto`, once built
    ann_upto: int = -1
    building: bool = False

    def __post_init__(self) -> None:
        self.vectors = np.zeros((_FIRST_CAPACITY, self.dim), dtype=np.float32)
        self.expires = np.zeros(_FIRST_CAPACITY, dtype=np.float64)
        self.serials = np.zeros(_FIRST_CAPACITY, dtype=np.int64)

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
        self.serials[at] = self.next_serial
        self.next_serial += 1
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
        serials = np.zeros(capacity, dtype=np.int64)
        vectors[: len(alive)] = self.vectors[alive]
        expires[: len(alive)] = self.expires[alive]
        serials[: len(alive)] = self.serials[alive]
        self.vectors, self.expires, self.serials = vectors, expires, serials
        self.keys = [self.keys[i] for i in alive]
        self.terms = [self.terms[i] for i in alive]
        self.positions = {key: i for i, key in enumerate(self.keys)}

    def _tail_start(self) -> int:
        """The first slot the approximate index does not cover."""
        size = len(self.keys)
        return int(np.searchsorted(self.serials[:size], self.ann_upto, side="right"))

    def ann_due(self) -> bool:
        size = len(self.keys)
        if self.building or size < ANN_MIN:
            return False
        return self.ann is None or size - self._tail_start() > _TAIL_SHARE * size

    def _candidates(self, vector: Vector) -> NDArray[np.intp]:
        """The slots to score exactly: all of them, or the index's proposals and the tail."""
        size = len(self.keys)
        if self.ann is None:
            return np.arange(size)
        found = self.ann.search(vector, ANN_CANDIDATES)
        labels = np.asarray(found.keys, dtype=np.int64)
        slots = np.searchsorted(self.serials[:size], labels)
        inside = slots < size
        slots, labels = slots[inside], labels[inside]
        slots = slots[self.serials[slots] == labels]  # a label compaction dropped finds another
        tail = np.arange(self._tail_start(), size)
        return np.concatenate([slots, tail]) if len(tail) else slots

    def nearest(
        self, vector: Vector, threshold: float, refuse: Callable[[frozenset[str]], bool] | None
    ) -> Neighbour | None:
        size = len(self.keys)
        if not size:
            return None
        slots = self._candidates(vector)
        vectors = self.vectors[:size] if self.ann is None else self.vectors[slots]
        scores = np.einsum("ij,j->i", vectors, vector)
        scores[self.expires[slots] <= time.time()] = -np.inf
        above = np.flatnonzero(scores >= threshold)
        for index in above[np.argsort(-scores[above])]:
            slot = int(slots[index])
            if refuse is None or not refuse(self.terms[slot]):
                return Neighbour(self.keys[slot], float(scores[index]))
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

    def ann_jobs(self) -> list[AnnJob]:
        """The partitions whose approximate index is missing or lags: copies to build from.
        Each is marked as building until `install` (or `abandon`) is called for it."""
        jobs = []
        for name, part in self._partitions.items():
            if part.ann_due():
                size = len(part.keys)
                part.building = True
                jobs.append(AnnJob(name, part.serials[:size].copy(), part.vectors[:size].copy()))
        return jobs

    def install(self, job: AnnJob, ann: Any) -> None:
        part = self._partitions.get(job.partition)
        if part is None:
            return
        part.ann, part.ann_upto, part.building = ann, int(job.serials[-1]), False

    def abandon(self, job: AnnJob) -> None:
        part = self._partitions.get(job.partition)
        if part is not None:
            part.building = False
