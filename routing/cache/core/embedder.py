"""A local, offline text embedder: WordLlama's static token embeddings, averaged.

The weights and the tokenizer ship inside the `wordllama` wheel. Its own `load()` looks for the
tokenizer in another folder and then downloads one from a hub, so the two packaged files are
read here directly; nothing is fetched at run time. The package is located without importing
it (its import configures the root logger).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.float32]

WEIGHTS = "weights/l2_supercat_256.safetensors"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, text: str) -> Vector: ...


class EmbedderUnavailable(RuntimeError):
    pass


def _package_dir() -> Path:
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable("the 'wordllama' package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


class WordLlamaEmbedder:
    name = "wordllama-l2-supercat-256"

    def __init__(self, folder: Path | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = folder or _package_dir()
        weights, tokenizer = folder / WEIGHTS, folder / TOKENIZER
        if not weights.exists() or not tokenizer.exists():
            raise EmbedderUnavailable(f"wordllama's packaged files are missing in {folder}")
        self.table: NDArray[np.float32] = np.ascontiguousarray(
            load_file(str(weights))["embedding.weight"], dtype=np.float32
        )
        self.dim = int(self.table.shape[1])
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()

    def embed(self, text: str) -> Vector:
        """A unit vector (cosine similarity is a dot product); zeros for text with no tokens."""
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        index = np.clip(np.asarray(ids, dtype=np.int64), 0, self.table.shape[0] - 1)
        vector: Vector = self.table[index].mean(axis=0, dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        return vector / np.float32(norm) if norm else vector
