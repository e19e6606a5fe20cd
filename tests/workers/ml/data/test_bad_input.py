"""Every kind of bad input gets its stable code and a sentence naming the problem, and leaves no Parquet behind."""

import gzip
import io
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workers.ml.data.limits import IngestLimits

ROOT = Path(__file__).resolve().parents[4]


def refused(ingest, data, name, code, **kwargs):
    error = ingest.error(data, name, **kwargs)
    assert error.code == code, error.message
    assert ingest.leftovers() == []  # no finished (or partial) Parquet
    return error


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty (0 bytes)."),
        (b"\n\r\n\n", "The file holds no data: it is empty or has only blank lines."),
        (gzip.compress(b""), "The file is an empty gzip archive (0 bytes of data inside)."),
    ],
)
def test_an_empty_file_is_refused(ingest, data, message):
    error = refused(ingest, data, "a.csv.gz" if data.startswith(b"\x1f\x8b") else "a.csv", "empty_file")
    assert error.message == message


@pytest.mark.parametrize("data", [b"a,b,c\n", b"a,b,c", b"a,b,c\r\n\r\n\n"])
def test_a_header_without_rows_is_refused(ingest, data):
    error = refused(ingest, data, "a.csv", "header_only")
    assert error.message == "The file has a header (3 columns) but no data rows under it."


def test_an_empty_parquet_is_header_only(ingest):
    buffer = io.BytesIO()
    pq.write_table(pa.table({"x": pa.array([], pa.int64())}), buffer)
    error = refused(ingest, buffer.getvalue(), "a.parquet", "header_only")
    assert error.message == "The Parquet file has 1 column but no rows."


def test_non_utf8_text_names_the_line_and_byte(ingest):
    error = refused(ingest, b"name,city\nAna,Oslo\nJos\xe9,Rio\n", "a.csv", "not_utf8")
    assert error.message == (
        "The file is not valid UTF-8: byte 0xE9 on line 3 (byte offset 22) cannot be decoded. Save the file as UTF-8 "
        "(in Excel: 'CSV UTF-8'), or declare its encoding."
    )


def test_non_utf8_after_the_first_block_is_found_too(ingest):
    data = b"name,city\n" + b"Ana,Oslo\n" * 600_000 + b"Jos\xe9,Rio\n"
    error = refused(ingest, data, "a.csv", "not_utf8")
    assert "byte 0xE9 on line 600,002" in error.message


def test_a_non_utf8_header_is_refused_before_parsing(ingest):
    error = refused(ingest, b"nome,descri\xe7\xe3o\n1,2\n", "a.csv", "not_utf8")
    assert error.message == (
        "The header line is not valid UTF-8 (byte 0xE7 at position 12). Save the file as UTF-8 (in Excel: "
        "'CSV UTF-8'), or declare its encoding."
    )


def test_non_utf8_jsonl_is_refused(ingest):
    error = refused(ingest, b'{"a": "x"}\n{"a": "caf\xe9"}\n', "a.jsonl", "not_utf8")
    assert error.message.startswith("The file is not valid UTF-8: byte 0xE9 on line 2 (byte offset 21)")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"a,b,c\n1,2,3\n4,5\n6,7,8\n", "Line 3 has 2 fields where the header has 3; every row must have one value per "
         "column."),
        (b"a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n", "Line 4 has 4 fields where the header has 3; every row must have one "
         "value per column."),
    ],
)  # fmt: skip
def test_ragged_rows_are_refused_with_the_line(ingest, data, message):
    assert refused(ingest, data, "a.csv", "ragged_rows").message == message


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b'a,b,c\n1,"2,3\n4,5,6\n7,"8",9\n', "found by line 4: ',' expected after '\"'"),
        (b'a,b,c\n1,2,3\n4,5,"6\n7,8,9\n', "found by line 4: unexpected end of data"),
    ],
)
def test_unbalanced_quotes_are_refused(ingest, data, detail):
    error = refused(ingest, data, "a.csv", "unbalanced_quotes")
    assert error.message == (
        f'Unbalanced quotes: a quoted value is not closed properly ({detail}). Close every opening " and write a '
        'quote inside a quoted value as "".'
    )


def test_a_lone_quote_inside_an_unquoted_value_is_fine(ingest):
    processed = ingest(b'item,n\n12" pizza,2\n', "a.csv")
    assert ingest.rows(processed) == [{"item": '12" pizza', "n": 2}]


def test_duplicate_column_names_are_named(ingest):
    error = refused(ingest, b"a,b,a,c,b\n1,2,3,4,5\n", "a.csv", "duplicate_column_names")
    assert error.message == (
        "Column names must be unique; these names appear more than once: 'a' (columns 1, 3); 'b' (columns 2, 5)."
    )
    assert error.column == "a"


def test_an_empty_column_name_is_named_by_position(ingest):
    error = refused(ingest, b"a, ,c\n1,2,3\n", "a.csv", "empty_column_name")
    assert error.message == "Column 2 has no name: every column needs one in the header."


def test_a_binary_file_named_csv_is_refused(ingest):
    error = refused(ingest, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(2048), "photo.csv", "binary_file")
    assert error.message == "The file is named like a CSV file but looks like a PNG image, not text."
    error = refused(ingest, bytes(range(256)) * 16, "data.csv", "binary_file")
    assert error.message == (
        "The file is named like a CSV file but looks like binary data (it contains NUL bytes), not text."
    )


def _gzip_of_zeros(path: Path, mib: int) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\x00" * 2**20
    with open(path, "wb") as out:
        for _ in range(mib):
            out.write(compressor.compress(block))
        out.write(compressor.flush())


def test_a_gzip_bomb_is_refused_without_inflating_it(ingest):
    _gzip_of_zeros(ingest.source, 200)
    assert ingest.source.stat().st_size < 300 * 1024
    started = time.perf_counter()
    error = refused(ingest, None, "data.csv.gz", "decompression_bomb")
    assert time.perf_counter() - started < 2
    assert error.message == (
        "The gzip file inflates more than 200 times its compressed size: it looks like a decompression bomb and was "
        "not unpacked."
    )


def test_a_gzip_bomb_keeps_memory_bounded(tmp_path):
    # In a fresh process, so the peak is this ingestion's own: far below the 200 MiB the bomb inflates to.
    bomb = tmp_path / "bomb.gz"
    _gzip_of_zeros(bomb, 200)
    code = (
        "import resource, sys; from pathlib import Path\n"
        "from workers.ml.data.pipeline import process_file\n"
        "from workers.ml.data.limits import IngestLimits\n"
        "from workers.ml.data.errors import IngestError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        f"    process_file(Path({str(bomb)!r}), Path({str(tmp_path)!r}), display_name='x.csv.gz',"
        " limits=IngestLimits(), rules={})\n"
        "except IngestError as e:\n"
        "    print(e.code, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    code_seen, grown_mib = result.stdout.split()
    assert code_seen == "decompression_bomb"
    assert int(grown_mib) < 50


def test_a_bomb_of_plausible_rows_is_caught_while_streaming(ingest):
    # Rows that compress well but not absurdly: the head passes, the stream's running ratio catches it.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(ingest.source, "wb") as out:
        out.write(compressor.compress(b"a,b\n"))
        for _ in range(64):
            out.write(compressor.compress(b"1,2\n" * 2**18))
        out.write(compressor.flush())
    error = refused(ingest, None, "rows.csv.gz", "decompression_bomb", limits=IngestLimits(max_compression_ratio=50))
    assert error.message.startswith("The gzip file inflates more than 50 times its compressed size")


def test_decompressed_data_over_the_limit_is_refused(ingest):
    data = gzip.compress(b"a,b\n" + b"".join(f"{i},{i * 7}\n".encode() for i in range(300_000)))
    error = refused(ingest, data, "a.csv.gz", "decompression_bomb", limits=IngestLimits(max_decompressed_bytes=2**20))
    assert error.message == (
        "The gzip file inflates to more than 1 MiB, the limit for decompressed data; it was not unpacked further."
    )


def test_a_truncated_gzip_is_refused(ingest):
    data = gzip.compress(b"a,b\n" + b"".join(f"{i},{os.urandom(8).hex()}\n".encode() for i in range(20_000)))
    error = refused(ingest, data[: len(data) // 2], "a.csv.gz", "unsupported_format")
    assert error.message == "The gzip file is truncated: it ends in the middle."


def test_a_file_over_the_size_limit_is_refused_before_reading(ingest):
    error = refused(ingest, b"a,b\n1,2\n" * 200, "a.csv", "too_large", limits=IngestLimits(max_bytes=1024))
    assert error.message == "The file is 1.6 KiB; the limit is 1 KiB."


def test_a_hundred_thousand_columns_are_refused_fast_before_parsing(ingest):
    header = ",".join(f"column_{i}" for i in range(100_000)).encode()
    ingest.write(header + b"\n" + b",".join([b"1"] * 100_000) + b"\n")
    started = time.perf_counter()
    error = refused(ingest, None, "wide.csv", "too_many_columns")
    assert time.perf_counter() - started < 2
    assert error.message == "The header has 100,000 columns; the limit is 2,000. Nothing was parsed."


def test_a_header_line_too_long_to_be_a_header_is_refused(ingest):
    error = refused(ingest, b"x" * 3_000_000, "a.csv", "cell_too_long")
    assert error.message == (
        "The header line is longer than 2 MiB without ending: a column name is too long, or the file is not a CSV."
    )


def test_a_jsonl_line_with_too_many_fields_is_refused(ingest):
    line = "{" + ",".join(f'"f{i}": {i}' for i in range(3000)) + "}\n"
    error = refused(ingest, line.encode(), "a.jsonl", "too_many_columns")
    assert error.message == "The first line has 3,000 columns; the limit is 2,000. Nothing was parsed."


def test_a_cell_over_the_limit_is_named(ingest):
    data = b"id,comment\n1,short\n2," + b"x" * 2000 + b"\n"
    error = refused(ingest, data, "a.csv", "cell_too_long", limits=IngestLimits(max_cell_bytes=1024))
    assert error.message == "Column 'comment', row 2: a value is 2 KiB long; the limit is 1 KiB."
    assert error.column == "comment"


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [
        (b'{"a": 1}\n{"a": \n', "invalid_json", "Line 2 is not valid JSON: Expecting value: line 1 column 7 (char 6)."),
        (b'{"a": 1}\n\n[1, 2]\n', "invalid_json", "Line 3 is not a JSON object; each line must be one {...} object."),
        (b'[1, 2]\n', "invalid_json", "Line 1 is not a JSON object; each line must be one {...} object."),
        (b'{"a": 1}\n{"a": "x"}\n', "invalid_json", "Field 'a' changes from number to string on line 2; each field "
         "must keep one type."),
        (b'{"a": 1, "a": 2}\n', "duplicate_column_names", "Line 1 repeats the field 'a'; field names must be unique."),
        (b'{"": 1}\n', "empty_column_name", "Column 1 has no name: every column needs one in the first line."),
    ],
)  # fmt: skip
def test_bad_json_lines_are_refused(ingest, data, code, message):
    assert refused(ingest, data, "a.jsonl", code).message == message


def test_json_fields_whose_type_changes_between_chunks_are_refused(ingest, monkeypatch):
    from workers.ml.data import jsonl_source

    monkeypatch.setattr(jsonl_source, "CHUNK_BYTES", 64)
    lines = [f'{{"a": {i}}}' for i in range(40)] + ['{"a": "forty"}']
    error = refused(ingest, "\n".join(lines).encode(), "a.jsonl", "invalid_json")
    assert error.message.startswith("Field 'a' holds numbers before line ")
    assert error.message.endswith("and text from there on; each field must keep one type.")


def _parquet_with_field_metadata(metadata: dict) -> bytes:
    field = pa.field("payload", pa.binary(), metadata=metadata)
    buffer = io.BytesIO()
    pq.write_table(pa.table({"payload": pa.array([b"1"])}, schema=pa.schema([field])), buffer)
    return buffer.getvalue()


def test_a_parquet_with_a_pickled_extension_type_is_refused(ingest):
    # Hand-built metadata of the kind pyarrow's old PyExtensionType wrote; the bytes only look like a pickle header.
    data = _parquet_with_field_metadata(
        {b"ARROW:extension:name": b"arrow.py_extension_type", b"ARROW:extension:metadata": b"\x80\x04\x95not-a-pickle"}
    )
    error = refused(ingest, data, "evil.parquet", "unsafe_parquet")
    assert error.message == (
        "The Parquet file carries a Python extension type (arrow.py_extension_type) in column 'payload'. Reading it "
        "could run code, so it was refused; write it again without Python extension types (plain columns only)."
    )


def test_a_parquet_with_pickled_extension_metadata_under_another_name_is_refused(ingest):
    data = _parquet_with_field_metadata(
        {b"ARROW:extension:name": b"my.type", b"ARROW:extension:metadata": b"\x80\x05fake"}
    )
    error = refused(ingest, data, "evil.parquet", "unsafe_parquet")
    assert "extension metadata that is a pickled Python object in column 'payload'" in error.message


def test_a_parquet_with_pickled_schema_metadata_is_refused(ingest):
    buffer = io.BytesIO()
    pq.write_table(pa.table({"x": [1]}).replace_schema_metadata({b"state": b"\x80\x04\x95..."}), buffer)
    error = refused(ingest, buffer.getvalue(), "evil.parquet", "unsafe_parquet")
    assert "metadata 'state' that is a pickled Python object" in error.message


def test_a_corrupt_parquet_is_refused(ingest):
    error = refused(ingest, b"PAR1" + os.urandom(100) + b"PAR1", "broken.parquet", "unsupported_format")
    assert error.message.startswith("The Parquet file cannot be read: ")


def test_an_unknown_declared_encoding_is_refused(ingest):
    error = refused(ingest, b"a\n1\n", "a.csv", "not_utf8", encoding="klingon")
    assert error.message == "Unknown text encoding 'klingon'."
