"""Simple scorers: does an answer match what an evaluation item expects?"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field


def normalized(text: str) -> str:
    """Case, Unicode forms, surrounding punctuation and runs of whitespace do not count."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split()).strip(" .!?\"'")


def exact(answer: str, expected: str) -> bool:
    return normalized(answer) == normalized(expected)


def contains(answer: str, expected: str) -> bool:
    return normalized(expected) in normalized(answer)


def regex(answer: str, expected: str) -> bool:
    return re.search(expected, answer, re.IGNORECASE) is not None


SCORERS: dict[str, Callable[[str, str], bool]] = {
    "contains": contains,
    "exact": exact,
    "regex": regex,
}


@dataclass
class CategoryResult:
    """One deployment on one category."""

    deployment_id: int
    deployment: str
    category: str
    samples: int = 0
    passed: int = 0
    errors: int = 0
    failures: list[str] = field(default_factory=list)  # first few, for the operator

    @property
    def score(self) -> float:
        return self.passed / self.samples if self.samples else 0.0
