"""Server-rendered SVG charts: geometry computed here, drawn by templates/billing/_chart.html.

A stacked bar per day, one colour per model (the largest models get their own colour, the rest
are "other"). No JavaScript: native <title> tooltips, and a table fallback for screen readers.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .money import Amount, format_usd, usd

Rows = Sequence[Mapping[str, Any]]  # usage_stats.daily_by_model's rows: day, model and the measures
Format = Callable[[float], str]  # a measure as a label (money, count)

WIDTH, HEIGHT = 720, 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 22, 12, 28
SERIES_COLOURS = 6  # classes s0..s5 in site.css; "other" is s6
TICKS = 4


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    series: int
    title: str


@dataclass
class Chart:
    title: str
    width: int = WIDTH  # viewBox units; pick about the rendered width so 11px labels stay 11px
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    grid: list[tuple[float, str]] = field(default_factory=list)  # (y, label)
    xlabels: list[tuple[float, str]] = field(default_factory=list)  # (x centre, label)
    legend: list[tuple[int, str, str]] = field(default_factory=list)  # (series, name, total)
    total: str = ""
    empty: bool = True
    plot_left: int = PAD_LEFT

    @property
    def plot_right(self) -> int:
        return self.width - PAD_RIGHT

    @property
    def baseline(self) -> int:
        return self.height - PAD_BOTTOM


def money(value: Amount | None) -> str:
    """Axis and legend labels (billing.money.format_usd): whole dollars from $100, cents from 1¢,
    below that up to 4 places."""
    amount = usd(value or 0)
    if amount == 0:
        return format_usd(0, 0)
    if abs(amount) >= 100:
        return format_usd(amount, 0)
    if abs(amount) >= Decimal("0.01"):
        return format_usd(amount, 2)
    return format_usd(amount.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def count(value: float | Decimal | None) -> str:
    value = float(value or 0)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.0f}"


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above value (axis maximum)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = float(step * 10**exponent)
        if candidate >= value * 0.999999:
            return candidate
    return float(10 ** (exponent + 1))


def series_order(rows: Rows, key: str) -> dict[str, int]:
    """Model → colour index by descending total of rows[key]; beyond SERIES_COLOURS, "other".
    Pass one order to several charts so a model keeps its colour across them."""
    totals: dict[str, float] = {}
    for row in rows:
        totals[row["model"]] = totals.get(row["model"], 0.0) + float(row[key] or 0)
    ranked = sorted(totals, key=lambda m: (-totals[m], m))
    return {m: (i if i < SERIES_COLOURS else SERIES_COLOURS) for i, m in enumerate(ranked)}


def _stacks(days: list[date], rows: Rows, key: str, series: dict[str, int]) -> dict[date, dict[int, float]]:
    stacks: dict[date, dict[int, float]] = {d: {} for d in days}
    for row in rows:
        if row["model"] in series and row["day"] in stacks:
            s = series[row["model"]]
            stacks[row["day"]][s] = stacks[row["day"]].get(s, 0.0) + float(row[key] or 0)
    return stacks


def stacked_daily(
    title: str,
    days: list[date],
    rows: Rows,
    key: str,
    fmt: Format = money,
    *,
    series: dict[str, int] | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """A stacked-bar chart of rows[key] per day and model (rows from usage_stats.daily_by_model)."""
    chart = Chart(title=title, width=width, height=height)
    series = series if series is not None else series_order(rows, key)
    stacks = _stacks(days, rows, key, series)
    top = max((sum(s.values()) for s in stacks.values()), default=0.0)
    chart.empty = top <= 0
    axis_max = nice_ceiling(top)
    plot_h = chart.baseline - PAD_TOP
    band = (chart.plot_right - chart.plot_left) / max(len(days), 1)
    bar_w = max(1.0, band * (0.72 if len(days) <= 31 else 0.8))
    chart.grid = [(chart.baseline - plot_h * i / TICKS, fmt(axis_max * i / TICKS)) for i in range(TICKS + 1)]
    names = {s: m for m, s in series.items() if s < SERIES_COLOURS}
    names[SERIES_COLOURS] = "other"
    for i, day in enumerate(days):
        x = chart.plot_left + band * i + (band - bar_w) / 2
        y = float(chart.baseline)
        for s in sorted(stacks[day]):
            if stacks[day][s] <= 0:
                continue
            h = plot_h * stacks[day][s] / axis_max
            y -= h
            label = f"{day:%b} {day.day} · {names[s]}: {fmt(stacks[day][s])}"
            chart.bars.append(Bar(round(x, 2), round(y, 2), round(bar_w, 2), round(max(h, 0.5), 2), s, label))
    every = max(1, math.ceil(len(days) / 8))
    chart.xlabels = [
        (round(chart.plot_left + band * (i + 0.5), 2), f"{d:%b} {d.day}")
        for i, d in enumerate(days)
        if (len(days) - 1 - i) % every == 0
    ]
    chart.legend = _legend(rows, key, series, names, fmt)
    chart.total = fmt(sum(float(r[key] or 0) for r in rows))
    return chart


def _legend(
    rows: Rows, key: str, series: dict[str, int], names: dict[int, str], fmt: Format
) -> list[tuple[int, str, str]]:
    per_series: dict[int, float] = {}
    for row in rows:
        if row["model"] in series:
            per_series[series[row["model"]]] = per_series.get(series[row["model"]], 0.0) + float(
                row[key] or 0
            )
    return [(s, names[s], fmt(per_series[s])) for s in sorted(per_series) if per_series[s] > 0]
