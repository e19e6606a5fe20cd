"""sniff_format: magic bytes first, then the display name's extension; binary files named like text are refused."""

import gzip
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workers.ml.data.errors import IngestError
from workers.ml.data.formats import FileFormat, SourceFormat, sniff_format


def parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": [1]}), buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("data.csv", b"a,b\n1,2\n", SourceFormat(FileFormat.CSV, gzip=False)),
        ("DATA.CSV", b"a,b\n", SourceFormat(FileFormat.CSV, gzip=False)),
        ("data.tsv", b"a\tb\n", SourceFormat(FileFormat.TSV, gzip=False)),
        ("events.jsonl", b'{"a": 1}\n', SourceFormat(FileFormat.JSONL, gzip=False)),
        ("events.ndjson", b'{"a": 1}\n', SourceFormat(FileFormat.JSONL, gzip=False)),
        ("data.csv.gz", gzip.compress(b"a,b\n1,2\n"), SourceFormat(FileFormat.CSV, gzip=True)),
        ("events.jsonl.gz", gzip.compress(b'{"a": 1}\n'), SourceFormat(FileFormat.JSONL, gzip=True)),
        ("../../etc/passwd.csv", b"a,b\n", SourceFormat(FileFormat.CSV, gzip=False)),
        ("C:\\Users\\me\\sales.tsv", b"a\tb\n", SourceFormat(FileFormat.TSV, gzip=False)),
    ],
)
def test_text_formats_are_recognised_by_extension(name, head, expected):
    assert sniff_format(name, head) == expected


def test_parquet_is_recognised_by_its_magic_whatever_the_name():
    assert sniff_format("export.csv", parquet_bytes()) == SourceFormat(FileFormat.PARQUET, gzip=False)
    assert sniff_format("data.parquet", parquet_bytes()) == SourceFormat(FileFormat.PARQUET, gzip=False)


def test_extension_used_in_artifact_keys():
    assert SourceFormat(FileFormat.CSV, gzip=True).extension == ".csv.gz"
    assert SourceFormat(FileFormat.PARQUET, gzip=False).extension == ".parquet"
    assert SourceFormat(FileFormat.JSONL, gzip=True).extension == ".jsonl.gz"
    assert SourceFormat(FileFormat.TSV, gzip=False).extension == ".tsv"


@pytest.mark.parametrize(
    ("name", "head", "code", "message"),
    [
        ("a.csv", b"", "empty_file", "The file is empty (0 bytes)."),
        ("notes.txt", b"hello", "unsupported_format", "Unsupported file type ('.txt'). Accepted: .csv, .tsv, "
         ".parquet, .jsonl or .ndjson (the text formats optionally gzip-compressed, .gz)."),
        ("README", b"hello", "unsupported_format", "Unsupported file type (no extension). Accepted: .csv, .tsv, "
         ".parquet, .jsonl or .ndjson (the text formats optionally gzip-compressed, .gz)."),
        ("a.parquet", b"a,b\n", "unsupported_format", "The file is named .parquet but is not a Parquet file."),
        ("a.csv.gz", b"a,b\n", "unsupported_format", "The file is named .gz but is not gzip-compressed."),
        ("a.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary_file",
         "The file is named like a CSV file but looks like a PNG image, not text."),
        ("a.csv", b"PK\x03\x04\x14\x00", "binary_file",
         "The file is named like a CSV file but looks like a ZIP archive (an Excel .xlsx workbook?), not text."),
        ("a.csv", b"a,b\n1,\x002\n", "binary_file",
         "The file is named like a CSV file but looks like binary data (it contains NUL bytes), not text."),
        ("a.tsv", b"\x01\x02\x03\x04a\x05\x06", "binary_file",
         "The file is named like a TSV file but looks like binary data (6 control bytes in its first 7 bytes), "
         "not text."),
        ("a.csv", "a,b\n".encode("utf-16"), "not_utf8",
         "The file is UTF-16 encoded text. Save it as UTF-8 (for example 'CSV UTF-8') and upload again."),
        ("data.gz", gzip.compress(b"a,b\n"), "unsupported_format", "The file is gzip-compressed, but its name does "
         "not say what is inside. Accepted: .csv, .tsv, .parquet, .jsonl or .ndjson (the text formats optionally "
         "gzip-compressed, .gz)."),
        ("a.parquet.gz", gzip.compress(b"PAR1...."), "unsupported_format", "The file is a gzip-compressed Parquet "
         "file. Parquet is compressed already: upload the .parquet file itself."),
        ("a.csv.gz", gzip.compress(b"\x00" * 100), "binary_file",
         "The file is named like a CSV file but looks like binary data (it contains NUL bytes), not text."),
        ("a.csv.gz", b"\x1f\x8b\x08\x00garbage-garbage", "unsupported_format", None),
    ],
)  # fmt: skip
def test_unrecognised_or_binary_heads_are_refused_with_a_code(name, head, code, message):
    with pytest.raises(IngestError) as caught:
        sniff_format(name, head)
    assert caught.value.code == code
    if message is not None:
        assert caught.value.message == message
    else:
        assert caught.value.message.startswith("The file starts like a gzip archive but cannot be decompressed")


def test_a_latin1_text_is_not_called_binary():
    assert sniff_format("a.csv", "nome,cidade\nJosé,São Paulo\n".encode("latin-1")).format == FileFormat.CSV


def test_a_gzip_head_that_inflates_too_far_is_a_bomb():
    head = gzip.compress(b"\x00" * (64 * 1024 * 1024))[: 64 * 1024]
    with pytest.raises(IngestError) as caught:
        sniff_format("a.csv.gz", head, max_compression_ratio=200)
    assert caught.value.code == "decompression_bomb"
    assert caught.value.message == (
        "The gzip file inflates more than 200 times its compressed size: it looks like a decompression bomb and was "
        "not unpacked."
    )
