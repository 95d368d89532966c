"""Server-rendered SVG charts: the geometry is computed here, drawn by
``dashboard/_chart.html``. No JavaScript, no CDN; each chart carries its numbers as a
table too (for screen readers and for people who want the exact figures).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 360, 200
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 40, 8, 10, 24
MAX_X_LABELS = 6
Y_TICKS = 4
NO_VALUE = "\u2013"  # an en dash, for a missing value in the table


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # one per label; None: no data
    css: str  # colour class, e.g. "s-completed"
    notes: Sequence[str] | None = None  # one per label, added to the tooltip


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Line:
    segments: list[str]  # SVG polyline point lists; a gap (None) starts a new one
    dots: list[tuple[float, float, str]]
    css: str


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass
class Chart:
    title: str
    unit: str
    labels: list[str]
    series: list[Series]
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """No data at all (a zero is data: no errors in an hour with calls)."""
        return all(value is None for s in self.series for value in s.values)

    @property
    def plot_left(self) -> int:
        return MARGIN_LEFT

    @property
    def plot_right(self) -> int:
        return self.width - MARGIN_RIGHT

    @property
    def plot_bottom(self) -> int:
        return self.height - MARGIN_BOTTOM

    @property
    def rows(self) -> list[tuple[str, list[str]]]:
        """The data as table rows: label, then one formatted value per series."""
        return [
            (label, [_format(s.values[i], self.unit) for s in self.series])
            for i, label in enumerate(self.labels)
        ]


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is >= ``value`` (axis top)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value:
            return float(candidate)
    return float(10 ** (exponent + 1))  # pragma: no cover - the loop always returns


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return NO_VALUE
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "s":
        return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"
    return f"{value:g}"


def _tooltip(label: str, series: Series, index: int, value: float, unit: str) -> str:
    note = f" ({series.notes[index]})" if series.notes and series.notes[index] else ""
    return f"{label}: {_format(value, unit)} {series.name}{note}"


def _axes(chart: Chart, top: float) -> tuple[float, float, float]:
    """Set the ticks; return (plot height, slot width, y scale)."""
    plot_height = chart.plot_bottom - MARGIN_TOP
    slot = (chart.plot_right - chart.plot_left) / max(len(chart.labels), 1)
    scale = plot_height / top
    for i in range(Y_TICKS + 1):
        value = top * i / Y_TICKS
        label = f"{value:g}{'%' if chart.unit == '%' else ''}"
        chart.y_ticks.append(Tick(chart.plot_bottom - value * scale, label))
    every = max(1, math.ceil(len(chart.labels) / MAX_X_LABELS))
    for i, label in enumerate(chart.labels):
        if i % every == 0:
            chart.x_ticks.append(Tick(chart.plot_left + slot * (i + 0.5), label))
    return plot_height, slot, scale


def stacked_bars(title: str, labels: list[str], series: list[Series], *, unit: str = "") -> Chart:
    """One bar per label, the series stacked bottom-up in the given order."""
    chart = Chart(title=title, unit=unit, labels=labels, series=series)
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    _, slot, scale = _axes(chart, nice_ceiling(max(totals, default=0)))
    bar_width = slot * 0.7
    for i, label in enumerate(labels):
        base = chart.plot_bottom
        x = chart.plot_left + slot * i + (slot - bar_width) / 2
        for s in series:
            value = s.values[i] or 0
            if not value:
                continue
            height = value * scale
            base -= height
            chart.bars.append(
                Bar(x, base, bar_width, height, s.css, _tooltip(label, s, i, value, unit))
            )
    return chart


def lines(title: str, labels: list[str], series: list[Series], *, unit: str = "") -> Chart:
    """One polyline per series; a missing value breaks the line."""
    chart = Chart(title=title, unit=unit, labels=labels, series=series)
    values = [v for s in series for v in s.values if v is not None]
    _, slot, scale = _axes(chart, nice_ceiling(max(values, default=0)))
    for s in series:
        segments: list[str] = []
        current: list[str] = []
        dots = []
        for i, value in enumerate(s.values):
            if value is None:
                if current:
                    segments.append(" ".join(current))
                current = []
                continue
            x = chart.plot_left + slot * (i + 0.5)
            y = chart.plot_bottom - value * scale
            current.append(f"{x:.1f},{y:.1f}")
            dots.append((x, y, _tooltip(labels[i], s, i, value, unit)))
        if current:
            segments.append(" ".join(current))
        chart.lines.append(Line(segments, dots, s.css))
    return chart
