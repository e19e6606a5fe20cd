"""Each format round-trips into the normalised Parquet copy with exact rows and types, and the original's digest."""

import datetime as dt
import gzip
import hashlib
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workers.ml.data.formats import FileFormat, SourceFormat

CSV = (
    "id,age,income,segment,joined,seen_at,active,note\n"
    "1,34,52000.5,gold,2024-01-05,2024-01-05 10:30:00,true,first\n"
    "2,,61000,silver,2024-02-10,2024-02-10 08:00:00,false,\n"
    '3,51,,gold,2024-03-15,2024-03-15 23:59:59,true,"with, comma"\n'
    '4,29,48000.25,bronze,,2024-04-01 00:00:00,,"two\nlines"\n'
)
EXPECTED_ROWS = [
    {"id": 1, "age": 34, "income": 52000.5, "segment": "gold", "joined": dt.date(2024, 1, 5),
     "seen_at": dt.datetime(2024, 1, 5, 10, 30), "active": True, "note": "first"},
    {"id": 2, "age": None, "income": 61000.0, "segment": "silver", "joined": dt.date(2024, 2, 10),
     "seen_at": dt.datetime(2024, 2, 10, 8, 0), "active": False, "note": None},
    {"id": 3, "age": 51, "income": None, "segment": "gold", "joined": dt.date(2024, 3, 15),
     "seen_at": dt.datetime(2024, 3, 15, 23, 59, 59), "active": True, "note": "with, comma"},
    {"id": 4, "age": 29, "income": 48000.25, "segment": "bronze", "joined": None,
     "seen_at": dt.datetime(2024, 4, 1), "active": None, "note": "two\nlines"},
]  # fmt: skip
EXPECTED_DTYPES = ["int64", "int64", "float64", "string", "date", "datetime", "bool", "string"]


def dtypes(processed) -> list[str]:
    return [column["dtype"] for column in processed.schema]


def test_csv_round_trips_with_exact_rows_types_and_digest(ingest):
    data = CSV.encode()
    processed = ingest(data, "customers.csv")
    assert processed.source_format == SourceFormat(FileFormat.CSV, gzip=False)
    assert (processed.row_count, processed.column_count) == (4, 8)
    assert dtypes(processed) == EXPECTED_DTYPES
    assert ingest.rows(processed) == EXPECTED_ROWS
    assert processed.original_sha256 == hashlib.sha256(data).hexdigest()
    assert processed.original_size == len(data)
    assert processed.parquet_path == ingest.workdir / "data.parquet"
    assert pq.ParquetFile(processed.parquet_path).metadata.row_group(0).column(0).compression == "ZSTD"
    assert ingest.leftovers() == ["data.parquet"]


def test_tsv_round_trips(ingest):
    data = CSV.replace(",", "\t").replace('"with\t comma"', '"with, comma"').encode()
    processed = ingest(data, "customers.tsv")
    assert processed.source_format == SourceFormat(FileFormat.TSV, gzip=False)
    assert dtypes(processed) == EXPECTED_DTYPES
    assert ingest.rows(processed) == EXPECTED_ROWS


@pytest.mark.parametrize(("name", "fmt"), [("c.csv.gz", FileFormat.CSV), ("c.tsv.gz", FileFormat.TSV)])
def test_gzip_text_round_trips_and_digests_the_compressed_bytes(ingest, name, fmt):
    text = CSV if fmt == FileFormat.CSV else CSV.replace(",", "\t").replace('"with\t comma"', '"with, comma"')
    data = gzip.compress(text.encode())
    processed = ingest(data, name)
    assert processed.source_format == SourceFormat(fmt, gzip=True)
    assert processed.row_count == 4
    assert dtypes(processed) == EXPECTED_DTYPES
    assert ingest.rows(processed) == EXPECTED_ROWS
    assert processed.original_sha256 == hashlib.sha256(data).hexdigest()
    assert processed.original_size == len(data)


def test_a_concatenated_gzip_reads_every_member(ingest):
    data = gzip.compress(b"a,b\n1,2\n") + gzip.compress(b"3,4\n5,6\n")
    processed = ingest(data, "c.csv.gz")
    assert ingest.rows(processed) == [{"a": 1, "b": 2}, {"a": 3, "b": 4}, {"a": 5, "b": 6}]


JSONL = (
    '{"id": 1, "score": 1, "name": "ann", "tags": ["a"], "when": "2024-01-05 10:00:00"}\n'
    "\n"
    '{"id": 2, "score": 2.5, "name": null, "tags": [], "when": "2024-01-06 11:00:00", "vip": true}\n'
    '{"id": 3, "name": "cy", "when": "2024-01-07 12:00:00"}\n'
)


@pytest.mark.parametrize("compressed", [False, True])
def test_jsonl_round_trips_with_late_fields_and_widened_numbers(ingest, compressed):
    data = gzip.compress(JSONL.encode()) if compressed else JSONL.encode()
    processed = ingest(data, "events.jsonl.gz" if compressed else "events.ndjson")
    assert processed.source_format == SourceFormat(FileFormat.JSONL, gzip=compressed)
    assert (processed.row_count, processed.column_count) == (3, 6)
    assert [(c["name"], c["dtype"]) for c in processed.schema] == [
        ("id", "int64"), ("score", "float64"), ("name", "string"), ("tags", "other"), ("when", "datetime"),
        ("vip", "bool"),
    ]  # fmt: skip
    assert ingest.rows(processed) == [
        {"id": 1, "score": 1.0, "name": "ann", "tags": ["a"], "when": dt.datetime(2024, 1, 5, 10), "vip": None},
        {"id": 2, "score": 2.5, "name": None, "tags": [], "when": dt.datetime(2024, 1, 6, 11), "vip": True},
        {"id": 3, "score": None, "name": "cy", "tags": None, "when": dt.datetime(2024, 1, 7, 12), "vip": None},
    ]
    assert processed.original_sha256 == hashlib.sha256(data).hexdigest()


def test_jsonl_fields_first_seen_in_a_later_chunk_are_kept(ingest, monkeypatch):
    from workers.ml.data import jsonl_source

    monkeypatch.setattr(jsonl_source, "CHUNK_BYTES", 64)
    lines = [json.dumps({"a": i}) for i in range(50)] + [json.dumps({"a": 50, "late": "x", "b": 0.5})]
    processed = ingest("\n".join(lines).encode(), "late.jsonl")
    assert processed.row_count == 51
    assert [(c["name"], c["dtype"]) for c in processed.schema] == [("a", "int64"), ("late", "string"), ("b", "float64")]
    assert ingest.rows(processed)[-1] == {"a": 50, "late": "x", "b": 0.5}
    assert ingest.rows(processed)[0] == {"a": 0, "late": None, "b": None}


def test_parquet_round_trips_into_the_normalised_types(ingest):
    table = pa.table(
        {
            "small": pa.array([1, 2, None], pa.int32()),
            "ratio": pa.array([0.5, float("nan"), 1.5], pa.float32()),
            "city": pa.array(["rio", "oslo", "rio"]).dictionary_encode(),
            "note": pa.array(["a", None, "c"], pa.large_string()),
            "at": pa.array(
                [1_700_000_000_000_000_000, None, 1_700_000_000_000_000_001], pa.timestamp("ns", "Europe/Oslo")
            ),
            "day": pa.array([19000, 19001, None], pa.date32()),
            "flag": pa.array([True, False, None]),
        }
    ).replace_schema_metadata({"pandas": "{}"})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=2)
    data = buffer.getvalue()
    processed = ingest(data, "export.parquet")
    assert processed.source_format == SourceFormat(FileFormat.PARQUET, gzip=False)
    assert dtypes(processed) == ["int64", "float64", "string", "string", "datetime", "date", "bool"]
    stored = pq.read_table(processed.parquet_path)
    assert stored.schema.metadata is None  # nothing from the source's metadata is carried over
    assert stored.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert stored.to_pylist() == [
        {"small": 1, "ratio": 0.5, "city": "rio", "note": "a",
         "at": dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC), "day": dt.date(2022, 1, 8), "flag": True},
        {"small": 2, "ratio": None, "city": "oslo", "note": None, "at": None, "day": dt.date(2022, 1, 9),
         "flag": False},
        {"small": None, "ratio": 1.5, "city": "rio", "note": "c",
         "at": dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC), "day": None, "flag": None},
    ]  # fmt: skip
    assert processed.original_sha256 == hashlib.sha256(data).hexdigest()


def test_utf8_bom_crlf_and_quoted_newlines_are_read(ingest):
    data = b'\xef\xbb\xbfname,city\r\n"Ana","S\xc3\xa3o\r\nPaulo"\r\nBo,Oslo\r\n'
    processed = ingest(data, "bom.csv")
    assert [c["name"] for c in processed.schema] == ["name", "city"]
    assert ingest.rows(processed) == [{"name": "Ana", "city": "São\r\nPaulo"}, {"name": "Bo", "city": "Oslo"}]


def test_a_declared_encoding_is_honoured(ingest):
    processed = ingest("nome,cidade\nJosé,São Paulo\n".encode("latin-1"), "latin.csv", encoding="latin-1")
    assert ingest.rows(processed) == [{"nome": "José", "cidade": "São Paulo"}]


@pytest.fixture
def small_blocks(monkeypatch):
    """pyarrow's streaming reader infers types from its first block; small blocks make 'later' cheap to reach."""
    from workers.ml.data import csv_source

    monkeypatch.setattr(csv_source, "BLOCK_SIZE", 64 * 1024)
    monkeypatch.setattr(csv_source, "MAX_BLOCK_SIZE", 4 * 1024 * 1024)


def test_a_column_that_changes_type_after_the_first_block_is_widened(ingest, small_blocks):
    body = "1,x\n" * 50_000
    processed = ingest(f"n,s\n{body}2.5,y\n".encode(), "wide.csv")
    assert processed.row_count == 50_001
    assert dtypes(processed) == ["float64", "string"]
    assert ingest.rows(processed)[-1] == {"n": 2.5, "s": "y"}
    processed = ingest(f"n,s\n{body}2.5,y\nz,w\n".encode(), "wide.csv")
    assert processed.row_count == 50_002
    assert dtypes(processed) == ["string", "string"]
    assert ingest.rows(processed)[-1] == {"n": "z", "s": "w"}


def test_a_column_empty_in_the_first_block_takes_the_type_of_later_values(ingest, small_blocks):
    processed = ingest(("n,s\n" + ",x\n" * 50_000 + "7,y\n").encode(), "late.csv")
    assert dtypes(processed) == ["int64", "string"]
    assert processed.profile[0]["count"] == 1


def test_a_row_longer_than_a_block_is_read_with_bigger_blocks(ingest, small_blocks):
    long_value = "word " * 40_000  # 200 KB, three blocks
    processed = ingest(f'id,text\n1,short\n2,"{long_value}"\n3,end\n'.encode(), "long.csv")
    assert processed.row_count == 3
    assert ingest.rows(processed)[1] == {"id": 2, "text": long_value}


def test_quoted_line_breaks_across_blocks_stay_in_their_value(ingest, small_blocks):
    rows = "".join(f'{i},"line one\nline two {i}"\n' for i in range(20_000))
    processed = ingest(f"id,note\n{rows}".encode(), "notes.csv")
    assert processed.row_count == 20_000
    assert ingest.rows(processed)[12_345] == {"id": 12_345, "note": "line one\nline two 12345"}


def test_the_display_name_is_never_a_path(ingest, tmp_path):
    ingest.write(b"a,b\n1,2\n")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    processed = ingest(None, "../../etc/passwd.csv")
    assert processed.parquet_path == ingest.workdir / "data.parquet"
    assert ingest.leftovers() == ["data.parquet"]
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert set(after) - set(before) == {ingest.workdir.relative_to(tmp_path) / "data.parquet"}


def test_the_same_bytes_give_the_same_digest_and_parquet(ingest, tmp_path):
    first = ingest(CSV.encode(), "a.csv")
    first_parquet = first.parquet_path.read_bytes()
    second = ingest(CSV.encode(), "renamed.csv")
    assert second.original_sha256 == first.original_sha256
    assert second.parquet_path.read_bytes() == first_parquet


def test_progress_is_reported_from_zero_to_one(ingest):
    seen = []
    ingest(CSV.encode(), "a.csv", progress=lambda fraction, message: seen.append((fraction, message)))
    fractions = [fraction for fraction, _ in seen]
    assert fractions[0] == 0.0
    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert seen[-1] == (1.0, "Done")
    assert ("0.7" in {str(f) for f in fractions}) or any(m.startswith("Profiled") for _, m in seen)


class Stop(Exception):
    pass


@pytest.mark.parametrize("stage", ["Reading and normalising", "Profiled"])
def test_a_progress_callback_can_stop_the_work_and_nothing_is_left(ingest, stage):
    calls = []

    def progress(fraction, message):
        calls.append(message)
        if message.startswith(stage):
            raise Stop

    wide = ",".join(f"c{i}" for i in range(40))
    rows = "\n".join(",".join(str(i) for _ in range(40)) for i in range(100))
    with pytest.raises(Stop):
        ingest(f"{wide}\n{rows}\n".encode(), "a.csv", progress=progress)
    assert ingest.leftovers() == []
    assert sum(message.startswith("Profiled") for message in calls) <= 1
