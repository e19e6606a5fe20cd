"""Evaluation charts drawn on the server as inline SVG (no JavaScript, no CDN), like the dataset profile charts.

Each builder takes plain lists (what workers.ml.evaluation stored with the run) and returns safe HTML: an
<svg role="img"> whose aria-label says in words what the chart shows, with <title> tooltips on marks. Input that does
not fit (empty, ragged, non-finite) gives an empty string, never an exception: a chart is never worth a 500.
"""

import math
from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 360, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 10, 34
BAR_ROW, BAR_LABEL = 20, 140
SERIES_CLASSES = ("series-0", "series-1", "series-2", "series-3", "series-4", "series-5")
EMPTY = mark_safe("")


def _finite(values: Sequence) -> list[float] | None:
    try:
        numbers = [float(value) for value in values]
    except (TypeError, ValueError):
        return None
    return numbers if numbers and all(math.isfinite(number) for number in numbers) else None


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _px(value: float) -> str:
    """A coordinate as SVG text (format_html escapes its arguments to text before formatting them)."""
    return f"{value:.1f}"


class _Frame:
    """Maps data coordinates into the plot area and draws the axes with their end ticks."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float]):
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        if self.x1 == self.x0:
            self.x1 = self.x0 + 1
        if self.y1 == self.y0:
            self.y1 = self.y0 + 1
        self.width = WIDTH - LEFT - RIGHT
        self.height = HEIGHT - TOP - BOTTOM

    def x(self, value: float) -> float:
        return LEFT + (value - self.x0) / (self.x1 - self.x0) * self.width

    def y(self, value: float) -> float:
        return TOP + self.height - (value - self.y0) / (self.y1 - self.y0) * self.height

    def axes(self, x_label: str, y_label: str) -> SafeString:
        bottom, right = TOP + self.height, LEFT + self.width
        return format_html(
            '<line class="axis" x1="{l}" y1="{b}" x2="{r}" y2="{b}"></line>'
            '<line class="axis" x1="{l}" y1="{t}" x2="{l}" y2="{b}"></line>'
            '<text class="tick" x="{l}" y="{tb}">{x0}</text>'
            '<text class="tick" x="{r}" y="{tb}" text-anchor="end">{x1}</text>'
            '<text class="tick" x="{lt}" y="{b}" text-anchor="end">{y0}</text>'
            '<text class="tick" x="{lt}" y="{tt}" text-anchor="end">{y1}</text>'
            '<text class="axis-label" x="{cx}" y="{lb}" text-anchor="middle">{xl}</text>'
            '<text class="axis-label" x="10" y="{cy}" text-anchor="middle" transform="rotate(-90 10 {cy})">{yl}</text>',
            l=LEFT,
            r=right,
            t=TOP,
            b=bottom,
            tb=bottom + 12,
            lt=LEFT - 4,
            tt=TOP + 8,
            x0=_fmt(self.x0),
            x1=_fmt(self.x1),
            y0=_fmt(self.y0),
            y1=_fmt(self.y1),
            cx=LEFT + self.width / 2,
            lb=HEIGHT - 4,
            xl=x_label,
            cy=TOP + self.height / 2,
            yl=y_label,
        )


def _svg(kind: str, summary: str, body, height: int = HEIGHT, width: int = WIDTH) -> SafeString:
    return format_html(
        '<svg class="chart {}" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}">{}</svg>',
        kind,
        summary,
        width,
        height,
        width,
        height,
        body,
    )


def _range(values: list[float], fixed: tuple[float, float] | None) -> tuple[float, float]:
    if fixed is not None:
        return fixed
    low, high = min(values), max(values)
    if low == high:
        return low - 1, high + 1
    margin = (high - low) * 0.05
    return low - margin, high + margin


def line_chart(
    series: list[dict],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    diagonal: bool = False,
    markers: bool = False,
) -> SafeString:
    """Lines of [{"name", "x": [...], "y": [...]}]: ROC and PR curves, calibration, the tuning history."""
    clean = []
    for item in series:
        xs, ys = _finite(item.get("x") or []), _finite(item.get("y") or [])
        if xs and ys and len(xs) == len(ys):
            clean.append((str(item.get("name", "")), xs, ys))
    if not clean:
        return EMPTY
    frame = _Frame(
        _range([x for _, xs, _ in clean for x in xs], x_range), _range([y for _, _, ys in clean for y in ys], y_range)
    )
    parts = [frame.axes(x_label, y_label)]
    if diagonal:
        parts.append(
            format_html(
                '<line class="reference" x1="{}" y1="{}" x2="{}" y2="{}"></line>',
                frame.x(frame.x0),
                frame.y(frame.y0),
                frame.x(frame.x1),
                frame.y(frame.y1),
            )
        )
    for index, (name, xs, ys) in enumerate(clean):
        points = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in zip(xs, ys, strict=True))
        css = SERIES_CLASSES[index % len(SERIES_CLASSES)]
        parts.append(
            format_html('<polyline class="line {}" points="{}"><title>{}</title></polyline>', css, points, name)
        )
        if markers:
            parts.append(
                format_html_join(
                    "",
                    '<circle class="dot {}" cx="{}" cy="{}" r="2.5"><title>{}: {}</title></circle>',
                    ((css, _px(frame.x(x)), _px(frame.y(y)), _fmt(x), _fmt(y)) for x, y in zip(xs, ys, strict=True)),
                )
            )
    if len(clean) > 1:
        legend = format_html_join(
            "",
            '<text class="legend {}" x="{}" y="{}">{}</text>',
            (
                (SERIES_CLASSES[i % len(SERIES_CLASSES)], LEFT + 8, TOP + 12 + 12 * i, name)
                for i, (name, _, _) in enumerate(clean)
            ),
        )
        parts.append(legend)
    summary = f"{title}: {', '.join(name or 'series' for name, _, _ in clean)}; {x_label} against {y_label}."
    return _svg("line-chart", summary, mark_safe("".join(parts)))  # noqa: S308 - every part is format_html output


def bar_chart(items: list[tuple[str, float]], *, title: str, value_format: str = "{:.3g}") -> SafeString:
    """Horizontal bars, largest first as given: feature importance, per-group fairness figures."""
    rows = [(str(label), float(value)) for label, value in items if value is not None and math.isfinite(float(value))]
    if not rows:
        return EMPTY
    largest = max(abs(value) for _, value in rows) or 1.0
    plot = WIDTH - BAR_LABEL - 56
    height = BAR_ROW * len(rows) + 4
    body = format_html_join(
        "",
        '<text class="label" x="0" y="{}">{}</text>'
        '<rect class="bar" x="{}" y="{}" width="{}" height="13"><title>{}: {}</title></rect>'
        '<text class="count" x="{}" y="{}">{}</text>',
        (
            (
                i * BAR_ROW + 13,
                label if len(label) <= 22 else label[:21] + "…",
                BAR_LABEL,
                i * BAR_ROW + 3,
                _px(max(plot * abs(value) / largest, 1)),
                label,
                value_format.format(value),
                _px(BAR_LABEL + plot * abs(value) / largest + 4),
                i * BAR_ROW + 13,
                value_format.format(value),
            )
            for i, (label, value) in enumerate(rows)
        ),
    )
    top_label, top_value = max(rows, key=lambda row: abs(row[1]))
    summary = f"{title}: {len(rows)} bars; the largest is {top_label} at {value_format.format(top_value)}."
    return _svg("bar-chart", summary, body, height=height)


def heatmap(labels: list, matrix: list[list], *, title: str) -> SafeString:
    """A confusion matrix: rows are actual classes, columns predicted; darker cells hold more rows."""
    size = len(labels)
    if not size or len(matrix) != size or any(len(row) != size for row in matrix):
        return EMPTY
    counts = [[int(value) for value in row] for row in matrix]
    cell = min(60, (WIDTH - 90) // size)
    largest = max(max(row) for row in counts) or 1
    names = [str(label) for label in labels]
    cells = format_html_join(
        "",
        '<rect class="cell" x="{}" y="{}" width="{}" height="{}" fill-opacity="{}">'
        "<title>actual {}, predicted {}: {}</title></rect>"
        '<text class="cell-count" x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (
                80 + c * cell,
                20 + r * cell,
                cell - 2,
                cell - 2,
                f"{0.1 + 0.9 * counts[r][c] / largest:.2f}",
                names[r],
                names[c],
                counts[r][c],
                80 + c * cell + cell / 2,
                20 + r * cell + cell / 2 + 4,
                counts[r][c],
            )
            for r in range(size)
            for c in range(size)
        ),
    )
    row_labels = format_html_join(
        "",
        '<text class="label" x="76" y="{}" text-anchor="end">{}</text>',
        ((20 + r * cell + cell / 2 + 4, names[r][:12]) for r in range(size)),
    )
    column_labels = format_html_join(
        "",
        '<text class="label" x="{}" y="14" text-anchor="middle">{}</text>',
        ((80 + c * cell + cell / 2, names[c][:8]) for c in range(size)),
    )
    correct = sum(counts[i][i] for i in range(size))
    total = sum(map(sum, counts))
    summary = f"{title}: {size} classes, {correct:,} of {total:,} rows on the diagonal (predicted correctly)."
    height = 24 + size * cell
    return _svg("heatmap", summary, format_html("{}{}{}", column_labels, row_labels, cells), height=height)


def scatter_chart(xs: list, ys: list, *, title: str, x_label: str, y_label: str, zero_line: bool = True) -> SafeString:
    """Points, e.g. residuals against predictions, with a line at y = 0."""
    xs, ys = _finite(xs or []), _finite(ys or [])
    if not xs or not ys or len(xs) != len(ys):
        return EMPTY
    y_range = _range(ys, None)
    if zero_line:
        y_range = (min(y_range[0], 0.0), max(y_range[1], 0.0))
    frame = _Frame(_range(xs, None), y_range)
    parts = [frame.axes(x_label, y_label)]
    if zero_line:
        parts.append(
            format_html(
                '<line class="reference" x1="{}" y1="{}" x2="{}" y2="{}"></line>',
                LEFT,
                _px(frame.y(0)),
                LEFT + frame.width,
                _px(frame.y(0)),
            )
        )
    parts.append(
        format_html_join(
            "",
            '<circle class="dot" cx="{}" cy="{}" r="2"></circle>',
            ((_px(frame.x(x)), _px(frame.y(y))) for x, y in zip(xs, ys, strict=True)),
        )
    )
    summary = f"{title}: {len(xs)} points of {y_label} against {x_label}."
    return _svg("scatter", summary, mark_safe("".join(parts)))  # noqa: S308 - every part is format_html output


def beeswarm(features: list[dict], *, title: str) -> SafeString:
    """SHAP summary: one row per feature (most important first), one dot per explained row at its SHAP value,
    coloured from low (blue) to high (red) by the feature's value rank; [{"feature", "shap": [...], "color": [0..1 or
    None]}]."""
    rows = []
    for item in features:
        shap_values = _finite(item.get("shap") or [])
        if shap_values:
            colors = list(item.get("color") or [None] * len(shap_values))[: len(shap_values)]
            colors += [None] * (len(shap_values) - len(colors))
            rows.append((str(item.get("feature", "")), shap_values, colors))
    if not rows:
        return EMPTY
    extreme = max(abs(value) for _, values, _ in rows for value in values) or 1.0
    plot_left, plot_width = BAR_LABEL, WIDTH - BAR_LABEL - 10
    height = BAR_ROW * len(rows) + 24

    def x_of(value: float) -> float:
        return plot_left + (value + extreme) / (2 * extreme) * plot_width

    def fill(color) -> str:
        if color is None or not isinstance(color, int | float) or not math.isfinite(color):
            return "#888"
        share = min(max(float(color), 0.0), 1.0)
        return f"rgb({int(40 + 200 * share)},{int(90 - 40 * share)},{int(220 - 180 * share)})"

    dots = []
    for index, (_name, values, colors) in enumerate(rows):
        y = index * BAR_ROW + 10
        for position, (value, color) in enumerate(zip(values, colors, strict=True)):
            jitter = ((position * 7919) % 11 - 5) * 0.9  # deterministic spread so dense rows stay readable
            dots.append((f"{x_of(value):.1f}", f"{y + jitter:.1f}", fill(color)))
    body = format_html(
        "{}{}{}"
        '<line class="reference" x1="{}" y1="0" x2="{}" y2="{}"></line>'
        '<text class="tick" x="{}" y="{}">{}</text><text class="tick" x="{}" y="{}" text-anchor="end">{}</text>',
        format_html_join(
            "",
            '<text class="label" x="0" y="{}">{}</text>',
            ((i * BAR_ROW + 14, name if len(name) <= 22 else name[:21] + "…") for i, (name, _, _) in enumerate(rows)),
        ),
        format_html_join("", '<circle class="swarm" cx="{}" cy="{}" r="2" fill="{}"></circle>', dots),
        "",
        _px(x_of(0)),
        _px(x_of(0)),
        height - 16,
        plot_left,
        height - 4,
        _fmt(-extreme),
        WIDTH - 10,
        height - 4,
        _fmt(extreme),
    )
    summary = (
        f"{title}: SHAP values of the {len(rows)} most important features, {rows[0][0]} first; "
        "each dot is one explained row, red for high feature values and blue for low ones."
    )
    return _svg("beeswarm", summary, body, height=height)
