"""Limits on one ingestion. The portal builds them from its DATASET_MAX_* settings; each is enforced before work
is wasted (size before reading, columns before parsing, decompressed size while inflating, cell length per batch)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestLimits:
    max_bytes: int = 2 * 1024**3  # raw (possibly compressed) size
    max_decompressed_bytes: int = 10 * 1024**3
    max_columns: int = 2000
    max_cell_bytes: int = 1024**2
    max_compression_ratio: int = 200  # decompressed/compressed beyond which a gzip is a bomb (checked as it streams)
    # Not a refusal: normalised data up to this size (Arrow bytes) stays in memory for the analysis instead of being
    # read back from the Parquet copy; larger data is analysed from the file, a column at a time.
    analysis_memory_bytes: int = 512 * 1024**2


def human_bytes(size: int | float) -> str:
    """1536 -> '1.5 KiB'; used in messages so a limit reads the way a person would write it."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            if unit == "bytes":
                return f"{int(value)} bytes"
            return f"{value:.1f} {unit}".replace(".0 ", " ")
        value /= 1024
    raise AssertionError("unreachable")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """plural(1, 'column') -> '1 column'; plural(2000, 'column') -> '2,000 columns'."""
    return f"{count:,} {singular if count == 1 else (plural_form or singular + 's')}"
