"""Simple scorers: does an answer match what an evaluation item expects?"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable


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
