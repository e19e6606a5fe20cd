"""Permission matrices describe calls with "{name}" placeholders, filled with the ids of the rows a test made."""


def fill_placeholders(value, ids: dict):
    """`value` (a string, or a dict of them, nested) with every "{name}" replaced by ids[name]."""
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: fill_placeholders(item, ids) for key, item in value.items()}
    return value
