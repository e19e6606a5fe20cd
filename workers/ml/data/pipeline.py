"""The one entry point for ingestion (the Celery task and bench/ingest.py call it):

    sniff -> hash -> normalise to Parquet (streaming) -> schema -> profile -> PII -> validate

Every file it writes lives in `workdir` under a fixed name (data.parquet, written as data.parquet.partial and renamed
when complete); the display name of an upload is only ever looked at for its extension. On bad input it raises
IngestError and leaves no Parquet behind; the caller deletes workdir either way.
"""

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from workers.ml.data.csv_source import normalise_csv
from workers.ml.data.errors import IngestError
from workers.ml.data.formats import HEAD_BYTES, FileFormat, SourceFormat, sniff_format
from workers.ml.data.jsonl_source import normalise_jsonl
from workers.ml.data.limits import IngestLimits, human_bytes
from workers.ml.data.normalise import Normalised
from workers.ml.data.parquet_source import normalise_parquet
from workers.ml.data.pii import detect_pii
from workers.ml.data.profile import summarise_column
from workers.ml.data.specs import ValidationRules
from workers.ml.data.sql import normalise_sql
from workers.ml.data.validation import Validator

Progress = Callable[[float, str], None]
ANALYSIS_THREADS = max(2, min(4, os.cpu_count() or 2))
NORMALISE_SHARE = 0.7  # of the progress bar; the analysis (profile, PII, validation) takes the rest


@dataclass
class ProcessedDataset:
    source_format: SourceFormat
    original_sha256: str  # SHA-256 of the source file's bytes exactly as given
    original_size: int
    parquet_path: Path  # the normalised copy (in workdir), zstd-compressed Parquet
    row_count: int
    column_count: int
    schema: list[dict]  # [{"name", "dtype", "nullable", "semantic_type"}]
    profile: list[dict]  # per column, see profile.py
    pii_findings: list[dict]  # [{"column", "kind", "share", "reason"}]
    validation: dict  # ValidationReport.as_dict(): {"passed": bool, "checks": [...]}


def _reporter(progress: Progress | None) -> Progress:
    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(round(min(max(fraction, 0.0), 1.0), 4), message)

    return report


def _column_reader(parquet_path: Path, table: pa.Table | None) -> tuple[pa.Schema, int, Callable]:
    """(schema, row count, name -> column) of the normalised data: from memory when the normaliser kept it, else
    read from the Parquet file one column at a time (one open file per analysis thread)."""
    if table is not None:
        return table.schema, table.num_rows, table.column
    local = threading.local()

    def read(name: str) -> pa.ChunkedArray:
        if not hasattr(local, "parquet"):
            local.parquet = pq.ParquetFile(parquet_path)
        return local.parquet.read(columns=[name], use_threads=True).column(0)

    return pq.read_schema(parquet_path), pq.read_metadata(parquet_path).num_rows, read


def _costliest_first(schema: pa.Schema) -> list[str]:
    """Column names with text first: they take longest (hashing every value), so starting them first keeps both
    analysis threads busy to the end instead of leaving one long text column alone at the tail."""
    return sorted(schema.names, key=lambda name: not pa.types.is_string(schema.field(name).type))


def analyse(
    parquet_path: Path,
    *,
    rules: ValidationRules,
    previous_schema: list[dict] | None,
    report: Progress,
    start: float = NORMALISE_SHARE,
    table: pa.Table | None = None,
) -> tuple[list[dict], list[dict], list[dict], dict]:
    """(schema, profile, PII findings, validation report) of normalised data, one column at a time on
    ANALYSIS_THREADS threads: from `table` when the normaliser kept the data in memory (within
    IngestLimits.analysis_memory_bytes), else from the Parquet file, so memory holds a few columns, never the table."""
    arrow_schema, row_count, column_of = _column_reader(parquet_path, table)
    validator = Validator(rules, row_count=row_count, previous_schema=previous_schema)

    def one(name: str):
        column = column_of(name)
        summary = summarise_column(name, column)
        findings = detect_pii(name, summary.schema["dtype"], summary.sample)
        return summary, findings, validator.column_checks(name, column)

    names = arrow_schema.names
    results = {}
    pool = ThreadPoolExecutor(max_workers=ANALYSIS_THREADS, thread_name_prefix="profile")
    try:
        futures = {pool.submit(one, name): name for name in _costliest_first(arrow_schema)}
        for done, future in enumerate(as_completed(futures), start=1):
            results[futures[future]] = future.result()
            report(start + (1 - start) * done / len(names), f"Profiled {done} of {len(names)} columns")
    finally:
        # On an error, or a progress callback that stops the work, the columns not yet started are dropped.
        pool.shutdown(wait=True, cancel_futures=True)
    schema, profile, findings = [], [], []
    for name in names:  # results in column order, whatever order they finished in
        summary, column_findings, checks = results[name]
        schema.append(summary.schema)
        profile.append(summary.profile)
        findings.extend(column_findings)
        validator.record(checks)
    return schema, profile, findings, validator.report(schema).as_dict()


def _finish(
    normalised: Normalised, source_format: SourceFormat, rules: ValidationRules, previous_schema, report: Progress
) -> ProcessedDataset:
    try:
        schema, profile, findings, validation = analyse(
            normalised.path, rules=rules, previous_schema=previous_schema, report=report, table=normalised.table
        )
    except BaseException:
        normalised.path.unlink(missing_ok=True)
        raise
    finally:
        normalised.table = None  # the caller keeps the result, not the data: let the memory go now
    report(1.0, "Done")
    return ProcessedDataset(
        source_format=source_format,
        original_sha256=normalised.original_sha256,
        original_size=normalised.original_size,
        parquet_path=normalised.path,
        row_count=normalised.row_count,
        column_count=normalised.column_count,
        schema=schema,
        profile=profile,
        pii_findings=findings,
        validation=validation,
    )


def process_file(
    source: Path,
    workdir: Path,
    *,
    display_name: str,
    limits: IngestLimits,
    rules: dict,
    previous_schema: list[dict] | None = None,
    progress: Progress | None = None,
    encoding: str | None = None,
) -> ProcessedDataset:
    """Ingest one file. `rules` is ValidationRules.as_dict() form ({} = defaults; bad rules raise
    specs.RulesError, a ValueError); with no expected columns in the rules, `previous_schema` supplies them, so
    schema drift fails validation. `encoding` declares a non-UTF-8 text encoding (e.g. "latin-1").
    Raises IngestError for bad input."""
    source, workdir = Path(source), Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    report = _reporter(progress)
    validation_rules = ValidationRules.from_dict(rules or {})
    size = source.stat().st_size
    if size > limits.max_bytes:
        raise IngestError(
            "too_large", f"The file is {human_bytes(size)}; the limit is {human_bytes(limits.max_bytes)}."
        )
    with open(source, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    source_format = sniff_format(display_name, head, max_compression_ratio=limits.max_compression_ratio)
    report(0.0, f"Reading the {source_format.format.value.upper()} file")

    def step(fraction: float) -> None:
        report(NORMALISE_SHARE * fraction, "Reading and normalising")

    if source_format.format in (FileFormat.CSV, FileFormat.TSV):
        normalised = normalise_csv(source, workdir, source_format, limits, encoding=encoding, progress=step)
    elif source_format.format == FileFormat.JSONL:
        normalised = normalise_jsonl(source, workdir, source_format, limits, progress=step)
    else:
        normalised = normalise_parquet(source, workdir, limits, progress=step)
    return _finish(normalised, source_format, validation_rules, previous_schema, report)


def process_sql(
    *,
    dsn: str,
    query: str,
    workdir: Path,
    limits: IngestLimits,
    rules: dict,
    previous_schema: list[dict] | None = None,
    progress: Progress | None = None,
    timeout_s: int = 300,
) -> ProcessedDataset:
    """Ingest the result of one read-only query (see sql.py). original_sha256/original_size describe the normalised
    Parquet file: the same rows give the same bytes, so re-running an unchanged query deduplicates."""
    report = _reporter(progress)
    validation_rules = ValidationRules.from_dict(rules or {})
    Path(workdir).mkdir(parents=True, exist_ok=True)
    report(0.0, "Running the query")
    normalised = normalise_sql(
        dsn=dsn,
        query=query,
        workdir=Path(workdir),
        limits=limits,
        timeout_s=timeout_s,
        progress=lambda rows: report(0.05, f"Fetched {rows:,} rows"),
    )
    return _finish(normalised, SourceFormat(FileFormat.PARQUET, gzip=False), validation_rules, previous_schema, report)
