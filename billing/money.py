"""How the console shows money: one precision, one rounding rule, tables that add up.

Every amount is a Decimal in USD shown to four decimal places (a hundredth of a cent: a single
request of a small model still shows what it cost), rounded half up. Where a table shows a total,
its rows are rounded by the largest-remainder method, so the rows as shown add up to the total as
shown (three users at 0.00333 show 0.0034, 0.0033, 0.0033 under a total of 0.0100).

Forecasts use one computation, `pace_projection`, for the month's outlook and for each budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

PLACES = 4
QUANTUM = Decimal(1).scaleb(-PLACES)  # 0.0001
# A projection never divides by less than this share of its window: in the first minutes of a
# month one request would otherwise project a fortune.
MIN_ELAPSED = Decimal("0.01")


def money(value: Decimal | int | None) -> Decimal:
    """An amount as shown: four places, half up."""
    return Decimal(value or 0).quantize(QUANTUM, rounding=ROUND_HALF_UP)


def allocate(amounts: Sequence[Decimal]) -> list[Decimal]:
    """The amounts as shown so that they add up to `money(sum(amounts))` (largest remainder).

    Each is first rounded down to the quantum; the units still missing go, one each, to the
    amounts that lost the most (ties: the earlier row, so the result is stable)."""
    if not amounts:
        return []
    exact = [Decimal(a) for a in amounts]
    floors = [a.quantize(QUANTUM, rounding=ROUND_FLOOR) for a in exact]
    missing = int((money(sum(exact, Decimal(0))) - sum(floors, Decimal(0))) / QUANTUM)
    by_loss = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in by_loss[: max(missing, 0)]:
        floors[i] += QUANTUM
    return floors


def pace_projection(*, spent: Decimal, start: datetime, end: datetime, now: datetime) -> Decimal:
    """Where spend ends the window [start, end) if it goes on at the pace of [start, now)."""
    length = (end - start).total_seconds()
    if length <= 0:
        return money(spent)
    elapsed = Decimal(str(min(max((now - start).total_seconds() / length, 0.0), 1.0)))
    return money(Decimal(spent) / max(elapsed, MIN_ELAPSED))


def usd_text(value: Decimal | int | None) -> str:
    """`money` as text with thousands separators: 1,234.5000."""
    return f"{money(value):,.{PLACES}f}"
