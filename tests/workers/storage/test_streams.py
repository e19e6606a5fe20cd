"""The verifying reader both stores return: hashes what is read, judges only at EOF, keeps failing once failed."""

import hashlib
import io

import pytest

from workers.storage.base import ChecksumMismatch
from workers.storage.streams import VerifyingReader, copy_hashing

DATA = b"0123456789" * 1000
GOOD = hashlib.sha256(DATA).hexdigest()


def test_reading_to_the_end_with_the_right_digest_returns_every_byte():
    reader = VerifyingReader(io.BytesIO(DATA), key="k", expected_sha256=GOOD)

    assert reader.read(0) == b""
    assert reader.read(3) + reader.read() == DATA
    assert reader.read(10) == b""
    assert (reader.bytes_read, reader.sha256) == (10_000, GOOD)


def test_a_wrong_digest_raises_at_eof_only_and_every_read_after():
    reader = VerifyingReader(io.BytesIO(DATA), key="projects/x", expected_sha256="0" * 64)

    assert reader.read(9_999) == DATA[:9_999]
    assert reader.read(1) == DATA[9_999:]
    with pytest.raises(ChecksumMismatch, match="projects/x"):
        reader.read(1)
    with pytest.raises(ChecksumMismatch):
        reader.read(1)


def test_without_a_digest_nothing_is_verified():
    reader = VerifyingReader(io.BytesIO(DATA), key="k", expected_sha256=None)

    assert reader.read() == DATA


def test_closing_the_reader_closes_the_underlying_stream():
    raw = io.BytesIO(DATA)
    reader = VerifyingReader(raw, key="k", expected_sha256=GOOD)

    reader.close()

    assert raw.closed is True


def test_copy_hashing_returns_digest_and_size_and_refuses_text_streams():
    target = io.BytesIO()

    assert copy_hashing(io.BytesIO(DATA), target, chunk_size=7) == (GOOD, 10_000)
    assert target.getvalue() == DATA
    with pytest.raises(TypeError, match="binary"):
        copy_hashing(io.StringIO("text"), io.BytesIO())
