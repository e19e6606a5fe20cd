"""Charts and number formatting for dataset profiles, drawn on the server as inline SVG (no JavaScript needed).

Every chart is an <svg role="img"> with an aria-label that summarises it in words, and each bar has a <title> tooltip
with its exact range and count.
"""

import math
import re

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

WIDTH, HEIGHT, PAD_BOTTOM, PAD_TOP = 320, 120, 16, 4
BAR_ROW, LABEL_WIDTH, TOP_WIDTH = 18, 110, 320
_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?)?$")


@register.filter
def number(value) -> str:
    """A profile statistic: integers with thousands separators, small floats with 4 significant digits, large ones
    with 2 decimals, None as a dash."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return "—"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.2f}".rstrip("0").rstrip(".")
        return f"{value:.4g}"
    text = str(value)
    if _ISO_MOMENT.match(text):  # datetime profiles carry ISO strings: show the date, and the time unless midnight
        date, time = text[:10], text[11:19]
        return date if time in ("", "00:00:00") else f"{date} {time}"
    return text


@register.filter
def percent(value) -> str:
    """0.1234 -> "12.3 %"."""
    if value is None:
        return "—"
    try:
        share = float(value)
    except (TypeError, ValueError):
        return "—"
    text = f"{share * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text} %"


def _range_label(low, high) -> str:
    return f"{number(low)} to {number(high)}"


@register.simple_tag
def histogram_chart(column: dict) -> SafeString:
    """An SVG bar chart of profile["histogram"] ({"edges": [n+1], "counts": [n]}); empty string when absent."""
    histogram = column.get("histogram") or {}
    counts = histogram.get("counts") or []
    edges = histogram.get("edges") or []
    if not counts or len(edges) != len(counts) + 1:
        return mark_safe("")
    name = column.get("name", "")
    tallest = max(counts) or 1
    total = sum(counts)
    bar_width = WIDTH / len(counts)
    plot_height = HEIGHT - PAD_BOTTOM - PAD_TOP
    bars = []
    for index, count in enumerate(counts):
        height = plot_height * count / tallest
        bars.append(
            (
                f"{index * bar_width + 0.5:.2f}",
                f"{PAD_TOP + plot_height - height:.2f}",
                f"{max(bar_width - 1, 1):.2f}",
                f"{height:.2f}",
                f"{_range_label(edges[index], edges[index + 1])}: {count:,}",
            )
        )
    peak = counts.index(max(counts))
    summary = (
        f"Histogram of {name}: {len(counts)} bins from {number(edges[0])} to {number(edges[-1])}; "
        f"the tallest bin, {_range_label(edges[peak], edges[peak + 1])}, holds {counts[peak]:,} of {total:,} values."
    )
    rects = format_html_join(
        "",
        '<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
        bars,
    )
    return format_html(
        '<svg class="chart histogram" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}"'
        ' preserveAspectRatio="none" data-column="{}">{}'
        '<line class="axis" x1="0" y1="{}" x2="{}" y2="{}"></line>'
        '<text class="tick" x="0" y="{}">{}</text>'
        '<text class="tick" x="{}" y="{}" text-anchor="end">{}</text></svg>',
        summary,
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        name,
        rects,
        HEIGHT - PAD_BOTTOM,
        WIDTH,
        HEIGHT - PAD_BOTTOM,
        HEIGHT - 3,
        number(edges[0]),
        WIDTH,
        HEIGHT - 3,
        number(edges[-1]),
    )


@register.simple_tag
def top_values_chart(column: dict) -> SafeString:
    """Horizontal bars of profile["top_values"] ([{"value", "count"}], most frequent first)."""
    values = [item for item in (column.get("top_values") or []) if isinstance(item, dict)]
    if not values:
        return mark_safe("")
    name = column.get("name", "")
    tallest = max(int(item.get("count") or 0) for item in values) or 1
    plot_width = TOP_WIDTH - LABEL_WIDTH - 50
    height = BAR_ROW * len(values)
    rows = []
    for index, item in enumerate(values):
        label = "(missing)" if item.get("value") is None else str(item.get("value"))
        count = int(item.get("count") or 0)
        width = plot_width * count / tallest
        short = label if len(label) <= 16 else label[:15] + "…"
        y = index * BAR_ROW
        rows.append(
            (
                y + 13,
                short,
                LABEL_WIDTH,
                y + 3,
                f"{max(width, 1):.2f}",
                f"{label}: {count:,}",
                LABEL_WIDTH + width + 4,
                y + 13,
                f"{count:,}",
            )
        )
    first = values[0]
    summary = (
        f"Most frequent values of {name}: {len(values)} shown; the most frequent, "
        f"{'(missing)' if first.get('value') is None else first.get('value')}, occurs {int(first.get('count') or 0):,}"
        f" times."
    )
    body = format_html_join(
        "",
        '<text class="label" x="0" y="{}">{}</text>'
        '<rect class="bar" x="{}" y="{}" width="{}" height="12"><title>{}</title></rect>'
        '<text class="count" x="{}" y="{}">{}</text>',
        rows,
    )
    return format_html(
        '<svg class="chart top-values" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}"'
        ' data-column="{}">{}</svg>',
        summary,
        TOP_WIDTH,
        height,
        TOP_WIDTH,
        height,
        name,
        body,
    )
