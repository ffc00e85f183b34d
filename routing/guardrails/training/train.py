"""Trains the injection classifier on the corpus's training split (never the held-out one).

    python scripts/injection_train.py

Logistic regression over hashed character n-grams (routing/guardrails/core/classifier.py), fitted with
full-batch Adam in numpy: no scikit-learn, no torch, the same arithmetic as scoring. A text is
scored as the request path scores it, by its worst 512-character window (multiple-instance
learning: the gradient reaches that window), not by its first window as a whole. Its
operating point is chosen without looking at the held-out split: out-of-fold scores on the
training split place the bias so that a probability of 0.5 is where
`target_fpr` of the training split's benign texts score above it.

A small network over WordLlama's word vectors is fitted on the same folds; a logistic
regression on the two halves' out-of-fold logits combines them, and the word half ships only if
the combination adds `words_must_add` recall at the operating point (injection.json records the
out-of-fold figures of each half and the choice).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from routing.guardrails.core.classifier import (
    DEFAULT_COMBINED,
    DEFAULT_EMBEDDING,
    DEFAULT_MODEL,
    Hashing,
    WordVectors,
)
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
    # Characters a window, and between window starts (scored so too: injection-ngram.json).
    window: int = 512
    stride: int = 256
    ngrams: tuple[int, ...] = (2, 3, 4, 5)  # character n-gram sizes
    # The word-vector network: hidden units, words per window, steps, L2.
    hidden: int = 32
    words: int = 256
    word_steps: int = 600
    word_l2: float = 1e-3
    words_must_add: float = 0.01  # out-of-fold recall the word-vector half must add to ship


@dataclass
class Design:
    """Windows as flat (feature index, window, value) triplets: value is 1/len**power, as scored.
    A text's logit is its worst window's (multiple-instance learning): trained as it is scored,
    so an instruction buried in a long document is learned from the window that holds it, and
    every window of a benign document is pushed down."""

    index: npt.NDArray[np.int64]
    row: npt.NDArray[np.int64]  # the window
    value: Floats
    rows: int  # windows
    owner: npt.NDArray[np.int64]  # the text each window is of, in order

    @classmethod
    def of(cls, texts: list[str], hashing: Hashing) -> Design:
        """One row per window of every text, as `NgramModel.logit` windows it: stride-long
        blocks, `window // stride` consecutive blocks a window, a text no longer than one window
        is one window. Repeated n-grams of a window are one entry with their values summed."""
        per_window = max(1, hashing.window // hashing.stride)
        index: list[npt.NDArray[np.int64]] = []
        row: list[npt.NDArray[np.int64]] = []
        owner: list[int] = []
        for number, text in enumerate(texts):
            positions = hashing.positions(normalise(text).text[:_TRAIN_CHARS])
            length = max((len(p) for p in positions), default=0)
            blocks = max(1, -(-length // hashing.stride))
            windows = max(1, blocks - per_window + 1)
            first = len(owner)
            for p in positions:
                if blocks <= per_window:
                    index.append(p)
                    row.append(np.full(len(p), first))
                    continue
                block = np.arange(len(p)) // hashing.stride
                for offset in range(per_window):
                    inside = (block >= offset) & (block - offset < windows)
                    index.append(p[inside])
                    row.append(first + block[inside] - offset)
            owner += [number] * windows
        flat_index, flat_row = np.concatenate(index), np.concatenate(row)
        size = np.bincount(flat_row, minlength=len(owner)).astype(np.float64)
        value = 1.0 / np.maximum(size[flat_row], 1.0) ** hashing.power
        dims = np.int64(1) << hashing.bits
        keys, inverse = np.unique(flat_row * dims + flat_index, return_inverse=True)
        values = np.asarray(np.bincount(inverse, weights=value), dtype=np.float64)
        return cls(keys % dims, keys // dims, values, len(owner),
                   np.asarray(owner, dtype=np.int64))  # fmt: skip

    def subset(self, keep: npt.NDArray[np.bool_]) -> Design:
        """The windows of the texts `keep` marks (one flag a text)."""
        windows = keep[self.owner]
        renumber = np.cumsum(windows) - 1
        mask = windows[self.row]
        texts = np.cumsum(keep) - 1
        return Design(self.index[mask], renumber[self.row[mask]], self.value[mask],
                      int(windows.sum()), texts[self.owner[windows]])  # fmt: skip

    @property
    def starts(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(np.r_[True, self.owner[1:] != self.owner[:-1]])

    def window_logits(self, weights: Floats, bias: float) -> Floats:
        contributions = weights[self.index] * self.value
        sums = np.bincount(self.row, weights=contributions, minlength=self.rows)
        return np.asarray(bias + sums, dtype=np.float64)

    def logits(self, weights: Floats, bias: float) -> Floats:
        """Each text's worst window's logit."""
        return np.asarray(np.maximum.reduceat(self.window_logits(weights, bias), self.starts))


# Characters of a text read in training: the corpus's texts are no longer.
_TRAIN_CHARS = 6000


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
    starts = design.starts
    for step in range(1, settings.steps + 1):
        windows = design.window_logits(params[:-1], params[-1])
        z = np.maximum.reduceat(windows, starts)
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        g = (p - labels) * sample
        # The gradient reaches each text's worst window only (its first, on a tie).
        worst = np.flatnonzero(windows == z[design.owner])
        worst = worst[np.r_[True, design.owner[worst][1:] != design.owner[worst][:-1]]]
        per_window = np.zeros(design.rows)
        per_window[worst] = g
        grad = np.empty_like(params)
        grad[:-1] = np.bincount(
            design.index, weights=per_window[design.row] * design.value, minlength=dims
        )
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
    fold = rng.integers(0, settings.folds, size=len(labels))
    scores = np.zeros(len(labels))
    for k in range(settings.folds):
        train = fold != k
        weights, bias = fit(design.subset(train), labels[train], stratum[train], dims, settings)
        scores[fold == k] = design.subset(fold == k).logits(weights, bias)
    benign = np.sort(scores[labels == 0])
    cut = benign[min(len(benign) - 1, int(np.ceil(len(benign) * (1 - settings.target_fpr))))]
    return float(cut), scores


def fit_words(
    x: Floats, labels: Floats, stratum: npt.NDArray[np.int64], settings: Settings
) -> tuple[Floats, Floats, Floats, float]:
    """The word-vector network, full-batch Adam: x -> relu(x W + c) . v + d."""
    rng = np.random.default_rng(settings.seed)
    sample = sample_weights(labels, stratum)
    dims, hidden = x.shape[1], settings.hidden
    params = [
        rng.normal(0, 1 / np.sqrt(dims), (dims, hidden)),
        np.zeros(hidden),
        rng.normal(0, 1 / np.sqrt(hidden), hidden),
        np.zeros(1),
    ]
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    for step in range(1, settings.word_steps + 1):
        first, bias, out, out_bias = params
        pre = x @ first + bias
        h = np.maximum(pre, 0)
        z = h @ out + out_bias[0]
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
        g = (p - labels) * sample
        g_h = np.outer(g, out) * (pre > 0)
        grads = [
            x.T @ g_h + settings.word_l2 * first,
            g_h.sum(axis=0),
            h.T @ g + settings.word_l2 * out,
            np.array([g.sum()]),
        ]
        for k, (param, grad) in enumerate(zip(params, grads, strict=True)):
            m, v = moments[k]
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad * grad
            moments[k] = (m, v)
            param -= settings.rate * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return params[0], params[1], params[2], float(params[3][0])


def word_logits(x: Floats, model: tuple[Floats, Floats, Floats, float]) -> Floats:
    first, bias, out, out_bias = model
    return np.asarray(np.maximum(x @ first + bias, 0) @ out + out_bias, dtype=np.float64)


def at_target_fpr(scores: Floats, labels: Floats, target_fpr: float) -> dict[str, float]:
    """The cut above which `target_fpr` of the benign texts score, and the recall there."""
    benign = np.sort(scores[labels == 0])
    cut = float(benign[min(len(benign) - 1, int(np.ceil(len(benign) * (1 - target_fpr))))])
    return {
        "cut": round(cut, 4),
        "recall": round(float((scores[labels == 1] > cut).mean()), 4),
        "fpr": round(float((scores[labels == 0] > cut).mean()), 4),
    }


def fit_combiner(features: Floats, labels: Floats, stratum: npt.NDArray[np.int64]) -> Floats:
    """Logistic regression on the two halves' out-of-fold logits (Newton steps; three weights)."""
    sample = sample_weights(labels, stratum)
    design = np.column_stack([features, np.ones(len(labels))])
    w = np.zeros(design.shape[1])
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -30, 30)))
        grad = design.T @ ((p - labels) * sample) + 1e-4 * w
        hess = (design * (sample * p * (1 - p))[:, None]).T @ design + 1e-4 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def train(
    rows: list[Row], out: Path = DEFAULT_MODEL, settings: Settings | None = None
) -> dict[str, object]:
    settings = settings or Settings()
    hashing = Hashing(ngrams=settings.ngrams, window=settings.window, stride=settings.stride)
    dims = 1 << hashing.bits
    training = [r for r in rows if r.split == "train"]
    started = time.perf_counter()
    texts = [normalise(r.text).text for r in training]
    design = Design.of([r.text for r in training], hashing)
    labels = np.array([r.label for r in training], dtype=np.float64)
    stratum = strata([r.text for r in training])
    vectors = WordVectors.load()
    x = np.stack([vectors.mean(t, settings.words) for t in texts]).astype(np.float64)
    # Out of fold, both halves, with the same folds: the combiner and the operating point are
    # fitted on scores of texts each half did not train on.
    _, ngram_oof = operating_point(design, labels, stratum, dims, settings)
    rng = np.random.default_rng(settings.seed)
    fold = rng.integers(0, settings.folds, size=len(labels))
    words_oof = np.zeros(len(labels))
    for k in range(settings.folds):
        train_rows = fold != k
        model = fit_words(x[train_rows], labels[train_rows], stratum[train_rows], settings)
        words_oof[fold == k] = word_logits(x[fold == k], model)
    a, b, c = fit_combiner(np.column_stack([ngram_oof, words_oof]), labels, stratum)
    oof = {
        name: at_target_fpr(scores, labels, settings.target_fpr)
        for name, scores in (
            ("ngram", ngram_oof),
            ("words", words_oof),
            ("combined", a * ngram_oof + b * words_oof + c),
        )
    }
    # The word-vector half ships only if, out of fold, it adds recall at the operating point:
    # it costs a third of a millisecond a long prompt and 32 MB of vectors in every process.
    use_words = oof["combined"]["recall"] >= oof["ngram"]["recall"] + settings.words_must_add
    if not use_words:
        a, b, c = 1.0, 0.0, 0.0
    cut = oof["combined" if use_words else "ngram"]["cut"]
    weights, bias = fit(design, labels, stratum, dims, settings)
    stamp = time.strftime("%Y.%m.%d", time.gmtime())
    version = ("ngram+words-" if use_words else "ngram-") + stamp
    trained_on = {
        "corpus": str(CORPUS.name),
        "rows": len(training),
        "attacks": int(labels.sum()),
        "benign": int(len(labels) - labels.sum()),
    }
    meta = {
        "version": version,
        "bits": hashing.bits,
        "ngrams": list(hashing.ngrams),
        "window": hashing.window,
        "stride": hashing.stride,
        "power": hashing.power,
        "bias": bias,
        "trained_on": trained_on,
        "settings": settings.__dict__,
        "length_strata": list(LENGTH_STRATA),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out.with_suffix(".npy"), weights.astype(np.float16), allow_pickle=False)
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    if use_words:
        first, hidden_bias, out_weights, out_bias = fit_words(x, labels, stratum, settings)
        np.savez(
            DEFAULT_EMBEDDING,
            first=first.astype(np.float32),
            hidden_bias=hidden_bias.astype(np.float32),
            out=out_weights.astype(np.float32),
            out_bias=np.float32(out_bias),
            words=np.int64(settings.words),
        )
    else:
        DEFAULT_EMBEDDING.unlink(missing_ok=True)
    combiner: dict[str, object] = {
        "version": version,
        "ngram": out.stem,
        "words": DEFAULT_EMBEDDING.name if use_words else None,
        "embedding": "wordllama l2_supercat_256 (whole-word lookup)" if use_words else None,
        "weights": [float(a), float(b)],
        # Shifted so that 0.5 is the operating point chosen out of fold.
        "bias": float(c - cut),
        "trained_on": trained_on,
        "out_of_fold": oof,
    }
    DEFAULT_COMBINED.write_text(json.dumps(combiner, indent=2) + "\n")
    combiner["seconds"] = round(time.perf_counter() - started, 1)
    return combiner


def main() -> None:
    print(json.dumps(train(read()), indent=2))
