"""An evaluation set: a JSONL file, one item per line.

    {"category": "extraction", "prompt": "...", "expected": "...", "scorer": "contains"}

`prompt` is a string (one user message) or a list of chat messages; `scorer` is one of
`routing.evaluations.scoring.SCORERS` (default "contains"). Blank lines and lines starting with "#" are
skipped. Every problem is reported with its line number, and nothing runs until the file is clean.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from routing.evaluations.models import CATEGORY_NAME
from routing.evaluations.scoring import SCORERS


class EvalSetError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class EvalItem:
    line: int
    category: str
    messages: tuple[dict[str, Any], ...]
    expected: str
    scorer: str


@dataclass(frozen=True, slots=True)
class EvalSet:
    name: str
    sha256: str
    items: tuple[EvalItem, ...]

    @property
    def categories(self) -> list[str]:
        return sorted({item.category for item in self.items})


def _item(line: int, raw: Any) -> EvalItem:
    if not isinstance(raw, dict):
        raise EvalSetError(f"line {line}: expected a JSON object")
    unknown = set(raw) - {"category", "prompt", "expected", "scorer", "id"}
    if unknown:
        raise EvalSetError(f"line {line}: unknown field(s) {', '.join(sorted(unknown))}")
    category = raw.get("category")
    if not isinstance(category, str) or not re.fullmatch(CATEGORY_NAME, category):
        raise EvalSetError(f"line {line}: 'category' must be a lowercase slug, e.g. 'extraction'")
    prompt = raw.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        messages: tuple[dict[str, Any], ...] = ({"role": "user", "content": prompt},)
    elif isinstance(prompt, list) and prompt and all(isinstance(m, dict) for m in prompt):
        messages = tuple(prompt)
    else:
        raise EvalSetError(f"line {line}: 'prompt' must be a non-empty string or message list")
    expected = raw.get("expected")
    if not isinstance(expected, str) or not expected:
        raise EvalSetError(f"line {line}: 'expected' must be a non-empty string")
    scorer = raw.get("scorer", "contains")
    if scorer not in SCORERS:
        raise EvalSetError(f"line {line}: unknown scorer {scorer!r}; one of {', '.join(SCORERS)}")
    if scorer == "regex":
        try:
            re.compile(expected)
        except re.error as exc:
            raise EvalSetError(f"line {line}: 'expected' is not a valid regex ({exc})") from None
    return EvalItem(line, category, messages, expected, scorer)


def load_eval_set(path: Path) -> EvalSet:
    data = path.read_bytes()
    items = []
    for number, text in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            raw = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise EvalSetError(f"line {number}: not valid JSON ({exc})") from None
        items.append(_item(number, raw))
    if not items:
        raise EvalSetError(f"{path.name}: no items")
    return EvalSet(path.name, hashlib.sha256(data).hexdigest(), tuple(items))
