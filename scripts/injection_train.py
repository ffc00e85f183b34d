"""Trains the injection classifier on routing/guardrails/training/data/corpus.jsonl (training split)
and writes routing/guardrails/core/models/injection-ngram.{npy,json}."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from routing.guardrails.training.train import main

if __name__ == "__main__":
    main()
