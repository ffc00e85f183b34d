"""Trains the injection classifier on guardrails/training/data/corpus.jsonl (training split)
and writes guardrails/core/models/injection-ngram.{npy,json}."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from guardrails.training.train import main

if __name__ == "__main__":
    main()
