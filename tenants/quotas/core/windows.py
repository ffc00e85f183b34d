"""Calendar-aligned budget windows in a timezone: a new period is a new window, never a reset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        return self.start.strftime("%Y%m%dT%H%M%z")


def window_at(period: str, timezone: str, now: datetime) -> Window:
    local = now.astimezone(ZoneInfo(timezone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start = midnight
        end = _next_midnight(start, days=1)
    elif period == "week":
        start = midnight - timedelta(days=local.weekday())
        end = _next_midnight(start, days=7)
    elif period == "month":
        start = midnight.replace(day=1)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
    else:
        raise ValueError(f"unknown budget period {period!r}")
    # Re-localise so that a daylight-saving change inside the window keeps wall-clock bounds.
    zone = ZoneInfo(timezone)
    return Window(start.replace(tzinfo=zone), end.replace(tzinfo=zone))


def _next_midnight(start: datetime, *, days: int) -> datetime:
    return (start.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=start.tzinfo)
