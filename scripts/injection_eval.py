"""Evaluates the shipped injection detectors on the held-out split and times them
(docs/injection-classifier.md)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_site.settings")

from routing.guardrails.training.evaluate import main

if __name__ == "__main__":
    main()
