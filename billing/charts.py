"""Server-rendered SVG charts: no JavaScript, no CDN, readable without colour (each line is labelled)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from billing.money import allocate, usd_text

_WIDTH, _HEIGHT, _PAD_LEFT, _PAD_RIGHT, _PAD_BOTTOM, _PAD_TOP = 720, 240, 56, 24, 28, 12
# Colour-blind-safe palette (Okabe-Ito).
_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999")


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    colour: str
    points: str  # SVG polyline points
    total: Decimal


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    y: float
    text: str


@dataclass(frozen=True, slots=True)
class LineChart:
    width: int
    height: int
    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    plot_left: int
    plot_bottom: int
    plot_right: int


def line_chart(days: list[date], series: dict[str, list[Decimal]]) -> LineChart | None:
    """Cost per day, one line per group; None when there is nothing to draw."""
    if not days or not series:
        return None
    peak = max((max(values) for values in series.values()), default=Decimal(0)) or Decimal(1)
    plot_w = _WIDTH - _PAD_LEFT - _PAD_RIGHT
    plot_h = _HEIGHT - _PAD_BOTTOM - _PAD_TOP
    step = plot_w / max(len(days) - 1, 1)

    def y(value: Decimal) -> float:
        return round(_PAD_TOP + plot_h - float(value / peak) * plot_h, 1)

    # The legend's totals add up to the table's total (billing/money.py).
    totals = allocate([sum(values, Decimal(0)) for values in series.values()])
    lines = [
        Line(
            label,
            _COLOURS[i % len(_COLOURS)],
            " ".join(f"{round(_PAD_LEFT + j * step, 1)},{y(v)}" for j, v in enumerate(values)),
            total,
        )
        for i, ((label, values), total) in enumerate(zip(series.items(), totals, strict=True))
    ]
    every = max(len(days) // 6, 1)
    x_ticks = [
        Tick(round(_PAD_LEFT + j * step, 1), _HEIGHT - 8, day.strftime("%b %d"))
        for j, day in enumerate(days)
        if j % every == 0
    ]
    y_ticks = [
        Tick(_PAD_LEFT - 6, y(peak * k / 4), f"${usd_text(peak * k / 4)}") for k in range(0, 5)
    ]
    return LineChart(
        _WIDTH,
        _HEIGHT,
        lines,
        x_ticks,
        y_ticks,
        _PAD_LEFT,
        _HEIGHT - _PAD_BOTTOM,
        _WIDTH - _PAD_RIGHT,
    )


@dataclass(frozen=True, slots=True)
class SeriesLine:
    label: str
    colour: str
    points: str
    summary: str  # shown in the legend: the line's total or peak, with its unit


@dataclass(frozen=True, slots=True)
class SeriesChart:
    title: str
    width: int
    height: int
    lines: list[SeriesLine]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    plot_left: int
    plot_bottom: int
    plot_right: int


def _quantity(value: float, unit: str) -> str:
    if unit == "$":
        return f"${usd_text(Decimal(str(value)))}"
    text = f"{value:,.0f}" if not unit or value >= 10 or value == 0 else f"{value:,.1f}"
    return f"{text} {unit}".rstrip()


def series_chart(
    title: str,
    moments: list[datetime],
    series: dict[str, list[float | None]],
    *,
    unit: str = "",
    hourly: bool = False,
    summarise: str = "total",  # "total" (requests, cost) or "peak" (latency)
) -> SeriesChart | None:
    """Any quantity over time, one labelled line per series; a missing value is drawn as a gap
    in the line's points (the bucket had no traffic). None when nothing is there to draw."""
    values = [v for line in series.values() for v in line if v is not None]
    if not moments or not values or not any(values):
        return None
    peak = max(values) or 1.0
    if not unit:  # a count: the axis ends on a whole number (a peak of 1 is not "0, 0, 1, 1")
        peak = float(math.ceil(peak))
    plot_w = _WIDTH - _PAD_LEFT - _PAD_RIGHT
    plot_h = _HEIGHT - _PAD_BOTTOM - _PAD_TOP
    step = plot_w / max(len(moments) - 1, 1)

    def y(value: float) -> float:
        return round(_PAD_TOP + plot_h - value / peak * plot_h, 1)

    lines = []
    for i, (label, points) in enumerate(series.items()):
        present = [v for v in points if v is not None]
        figure = sum(present) if summarise == "total" else max(present, default=0.0)
        lines.append(
            SeriesLine(
                label,
                _COLOURS[i % len(_COLOURS)],
                " ".join(
                    f"{round(_PAD_LEFT + j * step, 1)},{y(v)}"
                    for j, v in enumerate(points)
                    if v is not None
                ),
                f"{'peak ' if summarise == 'peak' else ''}{_quantity(figure, unit)}",
            )
        )
    every = max(len(moments) // 6, 1)
    shape = "%b %d %H:00" if hourly else "%b %d"
    x_ticks = [
        Tick(round(_PAD_LEFT + j * step, 1), _HEIGHT - 8, moment.strftime(shape))
        for j, moment in enumerate(moments)
        if j % every == 0
    ]
    levels = [peak * k / 4 for k in range(5)]
    if not unit:  # whole numbers, each once
        levels = sorted({float(round(level)) for level in levels})
    y_ticks = [Tick(_PAD_LEFT - 6, y(level), _quantity(level, unit)) for level in levels]
    return SeriesChart(
        title,
        _WIDTH,
        _HEIGHT,
        lines,
        x_ticks,
        y_ticks,
        _PAD_LEFT,
        _HEIGHT - _PAD_BOTTOM,
        _WIDTH - _PAD_RIGHT,
    )
