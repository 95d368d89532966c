"""The trace waterfall of a session page: one SVG per trace, a row per span, drawn by
``dashboard/_waterfall.html`` from the geometry computed here (no JavaScript, no CDN).

Rows are in tree order (a span under its parent, siblings by start); a span whose parent
is not among those read is drawn as a root. Each bar's x and width are its start and
duration on the trace's own time axis.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from traces.models import Span, SpanKind, SpanStatus

WIDTH = 960
LABEL_WIDTH = 300
MARGIN_RIGHT = 12
ROW_HEIGHT = 22
AXIS_HEIGHT = 20
INDENT = 12
MIN_BAR = 2.0  # px: an instant span stays visible
TICKS = 5
LABEL_CHARS = 40
NOTE_ROOM = 110  # px a note beside a bar needs


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Row:
    span: Span
    depth: int
    y: float
    x: float
    width: float
    label: str
    note: str  # duration, tokens, error: beside the bar
    css: str
    title: str

    @property
    def key(self) -> str:
        """The span's reference in the page's URL (``?span=<trace_id>-<span_id>``)."""
        return f"{self.span.trace_id}-{self.span.span_id}"

    @property
    def label_x(self) -> float:
        return 6 + self.depth * INDENT

    @property
    def text_y(self) -> float:
        return self.y + ROW_HEIGHT / 2

    plot_right: float = WIDTH - MARGIN_RIGHT

    @property
    def note_place(self) -> tuple[float, str, str]:
        """(x, text-anchor, css) of the note: right of the bar where there is room, else
        inside a wide bar, else left of it."""
        if self.plot_right - (self.x + self.width) >= NOTE_ROOM:
            return self.x + self.width + 4, "start", "span-note"
        if self.width >= NOTE_ROOM:
            return self.x + self.width - 4, "end", "span-note inside"
        return self.x - 4, "end", "span-note"


@dataclass
class Waterfall:
    trace_id: str
    start: datetime
    duration_ms: float
    rows: list[Row] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    width: int = WIDTH
    label_width: int = LABEL_WIDTH

    @property
    def height(self) -> int:
        return AXIS_HEIGHT + ROW_HEIGHT * len(self.rows) + 4

    @property
    def plot_right(self) -> int:
        return self.width - MARGIN_RIGHT

    @property
    def axis_y(self) -> int:
        return AXIS_HEIGHT - 6


def format_ms(value: float) -> str:
    if value < 1:
        return f"{value:.2f} ms"
    if value < 1000:
        return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"
    return f"{value / 1000:.2f} s"


def waterfalls(spans: Sequence[Span]) -> list[Waterfall]:
    """One waterfall per trace, traces in the order they started."""
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    drawn = [_waterfall(trace_id, members) for trace_id, members in by_trace.items()]
    return sorted(drawn, key=lambda waterfall: waterfall.start)


def _waterfall(trace_id: str, spans: list[Span]) -> Waterfall:
    start = min(span.start_time for span in spans)
    end = max(span.end_time for span in spans)
    total_ms = max((end - start).total_seconds() * 1000, 0.001)
    waterfall = Waterfall(trace_id=trace_id, start=start, duration_ms=total_ms)
    plot = waterfall.plot_right - LABEL_WIDTH
    scale = plot / total_ms
    for i in range(TICKS + 1):
        value = total_ms * i / TICKS
        waterfall.ticks.append(Tick(LABEL_WIDTH + value * scale, format_ms(value)))
    for depth, span in _tree_order(spans):
        offset = (span.start_time - start).total_seconds() * 1000
        width = max(span.duration_ms * scale, MIN_BAR)
        x = min(LABEL_WIDTH + offset * scale, waterfall.plot_right - MIN_BAR)
        y = AXIS_HEIGHT + ROW_HEIGHT * len(waterfall.rows)
        waterfall.rows.append(
            Row(
                span=span,
                depth=depth,
                y=y,
                x=x,
                width=min(width, waterfall.plot_right - x),
                label=_label(span, depth),
                note=_note(span),
                css=f"k-{span.kind}" + (" failed" if span.status_code == SpanStatus.ERROR else ""),
                title=_title(span),
                plot_right=waterfall.plot_right,
            )
        )
    return waterfall


def _tree_order(spans: list[Span]) -> list[tuple[int, Span]]:
    ids = {span.span_id for span in spans}
    children: dict[str, list[Span]] = defaultdict(list)
    roots = []
    for span in spans:
        if span.parent_span_id and span.parent_span_id in ids:
            children[span.parent_span_id].append(span)
        else:
            roots.append(span)
    ordered: list[tuple[int, Span]] = []
    stack = [(0, span) for span in sorted(roots, key=_start, reverse=True)]
    while stack:  # iterative: a deep trace cannot exhaust the stack
        depth, span = stack.pop()
        ordered.append((depth, span))
        below = sorted(children.get(span.span_id, []), key=_start, reverse=True)
        stack.extend((depth + 1, child) for child in below)
    return ordered


def _start(span: Span) -> tuple[datetime, str]:
    return (span.start_time, span.span_id)


def _label(span: Span, depth: int) -> str:
    room = max(LABEL_CHARS - depth * 2, 12)
    return span.name if len(span.name) <= room else span.name[: room - 1] + "\u2026"


def _tokens(span: Span) -> str:
    if span.input_tokens is None and span.output_tokens is None:
        return ""
    return f"{span.input_tokens or 0}\u2192{span.output_tokens or 0} tok"


def _note(span: Span) -> str:
    parts = [format_ms(span.duration_ms)]
    if span.kind == SpanKind.MODEL and _tokens(span):
        parts.append(_tokens(span))
    if span.status_code == SpanStatus.ERROR:
        parts.append("error")
    return " \u00b7 ".join(parts)


def _title(span: Span) -> str:
    parts = [f"{span.name} ({span.kind})", format_ms(span.duration_ms)]
    if _tokens(span):
        parts.append(_tokens(span))
    if span.status_code == SpanStatus.ERROR:
        parts.append(f"error: {span.status_message or 'no message'}")
    return " \u00b7 ".join(parts)
