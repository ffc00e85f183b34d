"""The injection classifier: a linear model over hashed character n-grams, scored with numpy.

Why this shape: it runs in well under a millisecond on a 2,000-token prompt with no thread
pool and no GPU, reads any script (character n-grams need no tokenizer or vocabulary), and
its weights are one array small enough to live in the repository (routing/guardrails/core/models/).
routing/guardrails/training/ trains it from a documented corpus; docs/injection-classifier.md says how.

Long texts are scored in overlapping windows and the worst window counts, so an instruction
buried in a long document is not averaged away by the document around it. Training scores its
texts the same way (the worst window's logit is the text's: routing/guardrails/training/train.py),
so the weights learn from the window that holds the attack.

A second half over WordLlama's static word vectors (read from the installed wheel's files) is
trained and weighed by every training run and combined with the n-grams only when, out of fold,
it adds recall; `injection.json` names the halves the shipped model uses.
"""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

MODELS = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = MODELS / "injection-ngram"

_PRIME = np.uint64(0x100000001B3)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MAX_CHARS = 200_000  # beyond this the tail is not scored (the rules still read it all)

Indices = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Hashing:
    """How text becomes feature indices: shared by training and scoring."""

    bits: int = 18
    ngrams: tuple[int, ...] = (2, 3, 4, 5)
    window: int = 2048  # characters scored together
    stride: int = 1024
    # A text's n-gram counts are divided by sqrt(n) (its vector has unit length when its n-grams
    # are distinct), so a long prompt's evidence adds up but no single n-gram dominates.
    power: float = 0.5

    def positions(self, text: str) -> list[Indices]:
        """Per n-gram size, the feature index of the n-gram starting at each position."""
        codes = np.frombuffer(text[:_MAX_CHARS].encode("utf-32-le"), dtype=np.uint32)
        codes = codes.astype(np.uint64)
        shift = np.uint64(64 - self.bits)
        out = []
        # The n-gram hash extends the (n-1)-gram one: h_n[i] = h_(n-1)[i] * P + c[i + n - 1].
        rolling, size = codes, 1
        for n in self.ngrams:
            while size < n:
                size += 1
                rolling = rolling[: len(codes) - size + 1] * _PRIME + codes[size - 1 :]
            if len(rolling) == 0 or len(codes) < n:
                out.append(np.zeros(0, dtype=np.int64))
                continue
            h = (rolling ^ np.uint64(n * 0x51ED27)) * _MIX
            out.append((h >> shift).astype(np.int64))
        return out


@dataclass(frozen=True)
class NgramModel:
    weights: npt.NDArray[np.float32]
    bias: float
    hashing: Hashing
    version: str

    @classmethod
    def load(cls, path: Path = DEFAULT_MODEL) -> NgramModel:
        meta = json.loads(path.with_suffix(".json").read_text())
        weights = np.load(path.with_suffix(".npy"), allow_pickle=False).astype(np.float32)
        hashing = Hashing(
            bits=meta["bits"],
            ngrams=tuple(meta["ngrams"]),
            window=meta["window"],
            stride=meta["stride"],
            power=meta.get("power", 0.5),
        )
        if len(weights) != 1 << hashing.bits:
            raise ValueError(f"{path}: {len(weights)} weights for {hashing.bits} hash bits")
        return cls(weights, float(meta["bias"]), hashing, str(meta["version"]))

    def logit(self, text: str) -> float:
        """The worst window's logit: bias + the sum of its n-grams' weights / count ** power.

        Windows are two consecutive stride-long blocks; each block's sum is one reduceat over
        the gathered weights, so a long prompt costs a few array passes, not a loop."""
        positions = self.hashing.positions(text)
        length = max((len(p) for p in positions), default=0)
        if length == 0:
            return self.bias
        stride = self.hashing.stride
        per_window = max(1, self.hashing.window // stride)
        starts = np.arange(0, length, stride)
        sums = np.zeros(len(starts), dtype=np.float64)
        counts = np.zeros(len(starts), dtype=np.float64)
        for p in positions:
            if len(p) == 0:
                continue
            inside = starts[starts < len(p)]
            sums[: len(inside)] += np.add.reduceat(self.weights[p], inside)
            counts[: len(inside)] += np.minimum(inside + stride, len(p)) - inside
        if len(starts) > per_window:
            kernel = np.ones(per_window)
            sums = np.convolve(sums, kernel, mode="valid")
            counts = np.convolve(counts, kernel, mode="valid")
        else:
            sums, counts = sums.sum(keepdims=True), counts.sum(keepdims=True)
        totals = sums / np.maximum(counts, 1.0) ** self.hashing.power
        return self.bias + float(totals.max())

    def probability(self, text: str) -> float:
        z = self.logit(text)
        return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0


# --- the word-vector half ------------------------------------------------------------------

WORDLLAMA_WEIGHTS = "weights/l2_supercat_256.safetensors"
WORDLLAMA_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
DEFAULT_EMBEDDING = MODELS / "injection-words.npz"
DEFAULT_COMBINED = MODELS / "injection.json"
_PUNCTUATION = (
    "".join(map(chr, range(33, 48)))
    + ":;<=>?@[\\]^_`{|}~\u00ab\u00bb\u201c\u201d\u2018\u2019\u201e\u2026\u00bf\u00a1"
)


def _wordllama_dir() -> Path:
    """The installed `wordllama` package's folder, found without importing it (its import
    configures the root logger) and never downloading anything. routing.cache.core.embedder
    finds it the same way; a pure package imports no other app's, so the few lines are repeated."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the 'wordllama' package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class WordVectors:
    """WordLlama's static token vectors (256 dimensions, shipped in its wheel), looked up by
    whole word. Its tokenizer costs ~2.4 ms CPU on a 2,000-token prompt, most of the request's
    budget; a whole-word lookup in the same vocabulary costs a tenth of that. Words the vocabulary
    holds only as pieces are skipped: the n-gram half reads every character anyway."""

    table: npt.NDArray[np.float32]
    index: dict[str, int]

    @classmethod
    def load(cls, folder: Path | None = None) -> WordVectors:
        from safetensors.numpy import load_file

        folder = folder or _wordllama_dir()
        weights, tokenizer = folder / WORDLLAMA_WEIGHTS, folder / WORDLLAMA_TOKENIZER
        if not weights.exists() or not tokenizer.exists():
            raise FileNotFoundError(f"wordllama's packaged files are missing in {folder}")
        table = np.ascontiguousarray(load_file(str(weights))["embedding.weight"], dtype=np.float32)
        vocab: dict[str, int] = json.loads(tokenizer.read_text())["model"]["vocab"]
        index: dict[str, int] = {}
        for token, token_id in vocab.items():
            if token.startswith("\u2581") and len(token) > 1 and token_id < len(table):
                word = token[1:].casefold()
                if word not in index or token[1:] == word:  # the lower-case token wins
                    index[word] = token_id
        return cls(table, index)

    def ids(self, text: str) -> Indices:
        """Whitespace-separated words, stripped of the punctuation around them (a regex word
        split costs six times as much on a long prompt)."""
        get, found = self.index.get, []
        for word in text[:_MAX_CHARS].split():
            token = get(word)
            if token is None:
                token = get(word.strip(_PUNCTUATION))
            if token is not None:
                found.append(token)
        return np.asarray(found, dtype=np.int64)

    def mean(self, text: str, words: int) -> npt.NDArray[np.float32]:
        """The mean vector of the first `words` known words (what the model is trained on)."""
        ids = self.ids(text)[:words]
        if len(ids) == 0:
            return np.zeros(self.table.shape[1], dtype=np.float32)
        return np.asarray(self.table[ids].mean(axis=0), dtype=np.float32)


@dataclass(frozen=True)
class WordModel:
    """A one-hidden-layer network over the mean word vector of a window of words. The first
    layer is linear, so it is folded into the vocabulary at load time (`projected`): a window's
    hidden layer is the mean of its words' projected rows."""

    projected: npt.NDArray[np.float32]  # vocabulary x hidden
    hidden_bias: npt.NDArray[np.float32]
    out: npt.NDArray[np.float32]
    out_bias: float
    words: int  # words per window
    vectors: WordVectors

    @classmethod
    def load(cls, path: Path = DEFAULT_EMBEDDING, vectors: WordVectors | None = None) -> WordModel:
        vectors = vectors or WordVectors.load()
        with np.load(path, allow_pickle=False) as saved:
            first, hidden_bias = saved["first"], saved["hidden_bias"]
            out, out_bias, words = saved["out"], float(saved["out_bias"]), int(saved["words"])
        if first.shape[0] != vectors.table.shape[1]:
            raise ValueError(
                f"{path}: {first.shape[0]} inputs for {vectors.table.shape[1]}-d vectors"
            )
        projected = np.ascontiguousarray(vectors.table @ first.astype(np.float32))
        return cls(projected, hidden_bias.astype(np.float32), out.astype(np.float32), out_bias,
                   words, vectors)  # fmt: skip

    def logit(self, text: str) -> float:
        """The worst window's logit (windows of `words` words, half-overlapping)."""
        ids = self.vectors.ids(text)
        if len(ids) == 0:
            return self.out_bias + float(np.maximum(self.hidden_bias, 0) @ self.out)
        rows = self.projected[ids]
        if len(ids) <= self.words:
            means = rows.mean(axis=0, keepdims=True)
        else:
            step = max(1, self.words // 2)
            sums = np.cumsum(rows, axis=0, dtype=np.float32)
            sums = np.vstack([np.zeros((1, rows.shape[1]), dtype=np.float32), sums])
            starts = np.arange(0, len(ids) - self.words + 1, step)
            means = (sums[starts + self.words] - sums[starts]) / self.words
        hidden = np.maximum(means + self.hidden_bias, 0)
        return self.out_bias + float((hidden @ self.out).max())


@dataclass(frozen=True)
class InjectionModel:
    """The two halves combined by a logistic regression fitted on out-of-fold scores; its bias
    places probability 0.5 at the operating point chosen in training."""

    ngram: NgramModel
    words: WordModel | None  # None: training found the word vectors added nothing
    weights: tuple[float, float]
    bias: float
    version: str

    @classmethod
    def load(cls, path: Path = DEFAULT_COMBINED) -> InjectionModel:
        meta = json.loads(path.read_text())
        ngram = NgramModel.load(MODELS / meta["ngram"])
        words = WordModel.load(MODELS / meta["words"]) if meta.get("words") else None
        a, b = meta["weights"]
        return cls(ngram, words, (float(a), float(b)), float(meta["bias"]), str(meta["version"]))

    def logit(self, text: str) -> float:
        a, b = self.weights
        z = self.bias + a * self.ngram.logit(text)
        return z + b * self.words.logit(text) if self.words is not None else z

    def probability(self, text: str) -> float:
        z = self.logit(text)
        return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0
