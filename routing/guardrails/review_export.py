"""Reviewers' labels as training rows, in the corpus format of routing/guardrails/training/
(`text`, `label`, `category`, `lang`, `source`, `split`): the next training run reads them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from routing.guardrails.models import ReviewLabel
from routing.guardrails.selectors import HeldRequest


def _lang(text: str) -> str:
    # The corpus names a language only where its script says it; reviewers' rows stay "".
    return "en" if text.isascii() else ""


def training_rows(held: Iterable[HeldRequest]) -> Iterator[dict[str, Any]]:
    for item in held:
        attack = item.label == ReviewLabel.INJECTION
        categories = item.finding.get("categories") or []
        yield {
            "text": item.text,
            "label": 1 if attack else 0,
            "category": (categories[0] if categories and attack else "")
            or ("reviewed_injection" if attack else "reviewed_benign"),
            "lang": _lang(item.text),
            "source": f"review:{item.record.request_id}",
            "split": "train",
        }


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[str]) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count
