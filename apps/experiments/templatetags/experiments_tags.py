"""Formatting for experiment pages: metric values, algorithm names, run durations, recorded JSON."""

import json
import math
from datetime import datetime

from django import template
from django.utils import timezone

from workers.ml.training.algorithms import ALGORITHMS  # stdlib only

register = template.Library()


@register.filter
def metric(value) -> str:
    """A score: 4 significant digits; None, NaN and infinity as a dash."""
    if value is None or isinstance(value, bool):
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return "—"
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    return f"{number:,.2f}" if abs(number) >= 1000 else f"{number:.4g}"


@register.filter
def algorithm_label(name: str) -> str:
    algorithm = ALGORITHMS.get(name)
    return algorithm.label if algorithm else name


@register.filter
def duration_until(start: datetime | None, end: datetime | None) -> str:
    """ "1 min 05 s" from start to end (or to now while running); a dash before the start."""
    if start is None:
        return "—"
    seconds = max(int(((end or timezone.now()) - start).total_seconds()), 0)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
