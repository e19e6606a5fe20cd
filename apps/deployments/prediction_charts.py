"""The contributions of an explained prediction as inline SVG, drawn on the server like apps/experiments/charts.py
(no JavaScript, no CDN): one horizontal bar per feature from a zero line, to the right when it pushed the prediction
up, to the left when it pulled it down. Input that does not fit gives an empty string, never an exception."""

import math

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH = 420
LABEL = 150
ROW = 20
MAX_BARS = 15
EMPTY = mark_safe("")


def _rows(contributions) -> list[tuple[str, float]]:
    if not isinstance(contributions, dict):
        return []
    rows = []
    for name, value in contributions.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            rows.append((str(name), float(value)))
    rows.sort(key=lambda row: -abs(row[1]))
    return rows[:MAX_BARS]


def contribution_chart(contributions, *, base_value=None, output: str = "") -> SafeString:
    """Bars of {feature: contribution}, largest magnitude first (at most MAX_BARS)."""
    rows = _rows(contributions)
    if not rows:
        return EMPTY
    largest = max(abs(value) for _, value in rows) or 1.0
    half = (WIDTH - LABEL - 16) / 2
    zero = LABEL + 8 + half
    height = ROW * len(rows) + 8

    def bar(index: int, label: str, value: float):
        length = max(half * abs(value) / largest, 1.0)
        x = zero if value >= 0 else zero - length
        return (
            index * ROW + 14,
            label if len(label) <= 24 else label[:23] + "…",
            "positive" if value >= 0 else "negative",
            f"{x:.1f}",
            index * ROW + 4,
            f"{length:.1f}",
            label,
            f"{value:+.4g}",
        )

    body = format_html_join(
        "",
        '<text class="label" x="0" y="{}">{}</text>'
        '<rect class="bar {}" x="{}" y="{}" width="{}" height="13"><title>{}: {}</title></rect>',
        (bar(index, label, value) for index, (label, value) in enumerate(rows)),
    )
    axis = format_html('<line class="axis" x1="{z}" y1="0" x2="{z}" y2="{h}"></line>', z=f"{zero:.1f}", h=height)
    top_label, top_value = rows[0]
    space = f" in {output}" if output else ""
    start = f" from a base value of {base_value:.4g}" if isinstance(base_value, int | float) else ""
    summary = (
        f"Contributions of {len(rows)} features to the prediction{space}{start}; the largest is {top_label} "
        f"at {top_value:+.4g}."
    )
    return format_html(
        '<svg class="chart contribution-chart" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}">'
        "{}{}</svg>",
        summary,
        WIDTH,
        height,
        WIDTH,
        height,
        axis,
        body,
    )
