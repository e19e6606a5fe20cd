"""The analysis of a dataset that fits IngestLimits.analysis_memory_bytes runs on the batches the normaliser kept in
memory instead of reading the Parquet copy back; both routes give exactly the same schema, profile, PII findings and
validation report."""

import datetime as dt
import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workers.ml.data import csv_source
from workers.ml.data.limits import IngestLimits
from workers.ml.data.normalise import ParquetSink

ROWS = 3000
RULES = {
    "min_rows": 10,
    "max_missing_share": 0.5,
    "ranges": {"age": {"min": 18, "max": 90}},
    "allowed_categories": {"segment": ["gold", "silver"]},
    "unique_columns": ["customer_id", "email"],
}
FROM_FILE = IngestLimits(analysis_memory_bytes=0)


def records() -> list[dict]:
    segments = ["gold", "silver", "bronze", "gold", "silver", "gold"]
    return [
        {
            "customer_id": i,
            "email": f"user{i % 2900}@example.com",  # a hundred repeats: the unique check fails with examples
            "age": None if i % 17 == 0 else 18 + (i * 7) % 80,
            "income": None if i % 11 == 0 else round(1000 + (i * 37.5) % 9000, 2),
            "segment": None if i % 23 == 0 else segments[i % len(segments)],
            "joined": (dt.date(2020, 1, 1) + dt.timedelta(days=i % 900)).isoformat(),
            "seen_at": f"2024-01-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:00",
            "active": i % 3 == 0,
            "note": f"note {i % 40} of {i % 7}",
            "empty": None,
        }
        for i in range(ROWS)
    ]


def csv_bytes() -> bytes:
    names = list(records()[0])
    lines = [",".join(names)]
    for row in records():
        lines.append(",".join("" if row[name] is None else str(row[name]).lower() for name in names))
    return ("\n".join(lines) + "\n").encode()


def jsonl_bytes() -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in records())


def parquet_bytes() -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records()), sink)
    return sink.getvalue()


SOURCES = {
    "customers.csv": csv_bytes,
    "customers.csv.gz": lambda: gzip.compress(csv_bytes(), mtime=0),
    "customers.jsonl": jsonl_bytes,
    "customers.parquet": parquet_bytes,
}


def analysis(processed) -> tuple:
    return processed.schema, processed.profile, processed.pii_findings, processed.validation


@pytest.mark.parametrize("name", list(SOURCES))
def test_analysis_in_memory_and_from_the_parquet_file_agree_exactly(ingest, name):
    data = SOURCES[name]()

    in_memory = ingest(data, name, rules=RULES)
    in_memory_result = analysis(in_memory)
    from_file = ingest(data, name, rules=RULES, limits=FROM_FILE)

    assert in_memory_result == analysis(from_file)
    assert not in_memory.validation["passed"]  # the failing checks compare too, with their examples
    assert {finding["column"] for finding in in_memory.pii_findings} == {"email"}


def test_a_dataset_within_the_budget_is_not_read_back_from_parquet(ingest, monkeypatch):
    def no_read_back(*args, **kwargs):
        raise AssertionError("read the Parquet copy back")

    monkeypatch.setattr(pq, "ParquetFile", no_read_back)
    monkeypatch.setattr(pq, "read_schema", no_read_back)

    processed = ingest(csv_bytes(), "customers.csv", rules=RULES)

    assert processed.row_count == ROWS
    with pytest.raises(AssertionError, match="read the Parquet copy back"):
        ingest(csv_bytes(), "customers.csv", rules=RULES, limits=FROM_FILE)


def test_a_column_widened_after_the_first_block_is_analysed_as_widened(ingest, monkeypatch):
    monkeypatch.setattr(csv_source, "BLOCK_SIZE", 16 * 1024)
    data = b"amount\n" + b"".join(f"{i}\n".encode() for i in range(5000)) + b"12.5\n"

    in_memory = ingest(data, "amounts.csv")
    from_file = ingest(data, "amounts.csv", limits=FROM_FILE)

    assert (
        in_memory.schema
        == from_file.schema
        == [{"name": "amount", "dtype": "float64", "nullable": False, "semantic_type": "numeric"}]
    )
    assert in_memory.profile == from_file.profile
    assert in_memory.profile[0]["max"] == 4999.0


def test_the_sink_keeps_the_batches_within_its_budget_and_lets_them_all_go_past_it(tmp_path):
    schema = pa.schema([pa.field("n", pa.int64())])
    batch = pa.record_batch([pa.array(range(1000), pa.int64())], schema=schema)  # 8,000 bytes

    within = ParquetSink(tmp_path / "a", keep_bytes=16_000)
    (tmp_path / "a").mkdir()
    within.open(schema)
    within.write(batch)
    within.write(batch)
    within.finish()
    over = ParquetSink(tmp_path / "b", keep_bytes=16_000)
    (tmp_path / "b").mkdir()
    over.open(schema)
    for _ in range(3):
        over.write(batch)
    over.finish()

    assert within.kept_table().column("n").to_pylist() == list(range(1000)) * 2
    assert over.kept_table() is None
    assert pq.read_table(over.final_path).num_rows == 3000
