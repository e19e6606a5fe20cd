import json

from django import template

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    """A before/after value as indented JSON (escaped by the template like any other text)."""
    if value is None:
        return "—"
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
