"""Trains the injection classifier on the corpus's training split (never the held-out one).

    python scripts/injection_train.py

Logistic regression over hashed character n-grams (routing/guardrails/core/classifier.py), fitted with
full-batch Adam in numpy: no scikit-learn, no torch, the same arithmetic as scoring. Its
operating point is chosen without looking at the held-out split: out-of-fold scores on the
training split place the bias so that a probability of 0.5 is where
`target_fpr` of the training split's benign texts score above it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from routing.guardrails.core.classifier import DEFAULT_MODEL, Hashing
from routing.guardrails.core.normalise import normalise
from routing.guardrails.training.corpus import CORPUS, Row, read

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Settings:
    l2: float = 1e-4
    steps: int = 250
    rate: float = 0.05
    folds: int = 4
    target_fpr: float = 0.005
    seed: int = 19


@dataclass
class Design:
    """Rows as flat (feature index, row, value) triplets: value is 1/len**power, as scored."""

    index: npt.NDArray[np.int64]
    row: npt.NDArray[np.int64]
    value: Floats
    rows: int

    @classmethod
    def of(cls, texts: list[str], hashing: Hashing) -> Design:
        parts = [hashing.features(normalise(t).text) for t in texts]
        lengths = np.array([max(1, len(p)) for p in parts])
        index = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        row = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
        return cls(index, row, 1.0 / lengths[row] ** hashing.power, len(parts))

    def subset(self, keep: npt.NDArray[np.bool_]) -> Design:
        renumber = np.cumsum(keep) - 1
        mask = keep[self.row]
        return Design(self.index[mask], renumber[self.row[mask]], self.value[mask], int(keep.sum()))

    def logits(self, weights: Floats, bias: float) -> Floats:
        contributions = weights[self.index] * self.value
        sums = np.bincount(self.row, weights=contributions, minlength=self.rows)
        return np.asarray(bias + sums, dtype=np.float64)


# Text lengths (characters) that weigh their classes separately; see `sample_weights`.
LENGTH_STRATA = (200, 800, 2000)


def strata(texts: list[str]) -> npt.NDArray[np.int64]:
    return np.searchsorted(np.array(LENGTH_STRATA), [len(t) for t in texts], side="right")


def sample_weights(labels: Floats, stratum: npt.NDArray[np.int64]) -> Floats:
    """Attacks and benign texts weigh the same within each length stratum. Most jailbreaks are
    long and most benign questions short: weighed per class only, the model learns that length
    itself is evidence, and flags long pasted documents."""
    weights = np.zeros(len(labels))
    for k in np.unique(stratum):
        share = (stratum == k).sum() / len(labels)
        present = [c for c in (0.0, 1.0) if ((stratum == k) & (labels == c)).any()]
        for c in present:
            members = (stratum == k) & (labels == c)
            weights[members] = share / len(present) / members.sum()
    return weights


def fit(
    design: Design, labels: Floats, stratum: npt.NDArray[np.int64], dims: int, settings: Settings
) -> tuple[Floats, float]:
    sample = sample_weights(labels, stratum)
    params = np.zeros(dims + 1)
    m, v = np.zeros_like(params), np.zeros_like(params)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, settings.steps + 1):
        z = design.logits(params[:-1], params[-1])
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        g = (p - labels) * sample
        grad = np.empty_like(params)
        grad[:-1] = np.bincount(design.index, weights=g[design.row] * design.value, minlength=dims)
        grad[:-1] += settings.l2 * params[:-1]
        grad[-1] = g.sum()
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad * grad
        mhat, vhat = m / (1 - beta1**step), v / (1 - beta2**step)
        params -= settings.rate * mhat / (np.sqrt(vhat) + eps)
    return params[:-1], float(params[-1])


def operating_point(
    design: Design, labels: Floats, stratum: npt.NDArray[np.int64], dims: int, settings: Settings
) -> tuple[float, Floats]:
    """The logit above which `target_fpr` of benign training texts fall, out of fold."""
    rng = np.random.default_rng(settings.seed)
    fold = rng.integers(0, settings.folds, size=design.rows)
    scores = np.zeros(design.rows)
    for k in range(settings.folds):
        train = fold != k
        weights, bias = fit(design.subset(train), labels[train], stratum[train], dims, settings)
        scores[fold == k] = design.subset(fold == k).logits(weights, bias)
    benign = np.sort(scores[labels == 0])
    cut = benign[min(len(benign) - 1, int(np.ceil(len(benign) * (1 - settings.target_fpr))))]
    return float(cut), scores


def train(
    rows: list[Row], out: Path = DEFAULT_MODEL, settings: Settings | None = None
) -> dict[str, object]:
    settings = settings or Settings()
    hashing = Hashing()
    dims = 1 << hashing.bits
    training = [r for r in rows if r.split == "train"]
    started = time.perf_counter()
    design = Design.of([r.text for r in training], hashing)
    labels = np.array([r.label for r in training], dtype=np.float64)
    stratum = strata([r.text for r in training])
    cut, scores = operating_point(design, labels, stratum, dims, settings)
    weights, bias = fit(design, labels, stratum, dims, settings)
    oof_recall = float((scores[labels == 1] > cut).mean())
    oof_fpr = float((scores[labels == 0] > cut).mean())
    version = time.strftime("%Y.%m.%d", time.gmtime())
    meta = {
        "version": f"ngram-{version}",
        "bits": hashing.bits,
        "ngrams": list(hashing.ngrams),
        "window": hashing.window,
        "stride": hashing.stride,
        "power": hashing.power,
        # Shifted so that 0.5 is the operating point chosen out of fold.
        "bias": bias - cut,
        "trained_on": {
            "corpus": str(CORPUS.name),
            "rows": len(training),
            "attacks": int(labels.sum()),
            "benign": int(len(labels) - labels.sum()),
        },
        "settings": settings.__dict__,
        "length_strata": list(LENGTH_STRATA),
        "out_of_fold": {"recall": round(oof_recall, 4), "fpr": round(oof_fpr, 4)},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out.with_suffix(".npy"), weights.astype(np.float16), allow_pickle=False)
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    meta["seconds"] = round(time.perf_counter() - started, 1)
    return meta


def main() -> None:
    print(json.dumps(train(read()), indent=2))
