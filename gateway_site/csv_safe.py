"""The one way the gateway writes CSV: cells a spreadsheet would run as a formula are made text.

A spreadsheet treats a cell beginning with `=`, `+`, `-` or `@` (also after a tab or carriage
return) as a formula, so an end-user id, feature tag, username, key or team name chosen by a caller
could arrive in a finance or compliance officer's sheet as `=HYPERLINK(...)` (OWASP "CSV
injection"). Such text is written with a leading `'`. Text that already begins with `'` gets one
too, so removing exactly one leading `'` from any cell that has one always gives the value back.

Numbers the gateway computed itself (int, float, Decimal: costs, tokens, latencies) are written as
numbers, negative ones included: no caller chose them, and a prefixed number would no longer sum.
Decimals are written in positional notation, never as `1.15E-7`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PREFIX = "'"
_PREFIXED_STARTS = (*FORMULA_STARTS, PREFIX)

# Stated in every audit export manifest: how a reader recovers the exact values.
CSV_RULE = {
    "prefix": PREFIX,
    "when_text_starts_with": [*_PREFIXED_STARTS],
    "numbers": "costs, tokens and latencies written by the gateway are plain numbers, never prefixed",
    "to_recover_a_value": "remove one leading ' from a text cell that has one",
}


class _Writable(Protocol):
    def write(self, text: str, /) -> object: ...


def csv_cell(value: object) -> object:
    """A value as it may safely appear in a CSV cell (see the module's docstring)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int | float):
        return value
    text = str(value)
    return PREFIX + text if text.startswith(_PREFIXED_STARTS) else text


class CsvWriter:
    """`csv.writer` with every cell passed through `csv_cell`."""

    def __init__(self, stream: _Writable) -> None:
        self._writer = csv.writer(stream)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)
