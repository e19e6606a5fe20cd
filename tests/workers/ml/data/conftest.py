"""Helpers for the data-processing tests: write a source file outside the work directory, ingest it, and look at
what the work directory holds afterwards."""

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from workers.ml.data.errors import IngestError
from workers.ml.data.limits import IngestLimits
from workers.ml.data.pipeline import process_file


class Ingest:
    def __init__(self, root: Path):
        self.root = root
        self.source = root / "source" / "upload.bin"  # a fixed server-side name, never the display name
        self.workdir = root / "work"
        self.source.parent.mkdir()
        self.workdir.mkdir()

    def write(self, data: bytes) -> Path:
        self.source.write_bytes(data)
        return self.source

    def __call__(self, data: bytes | None, display_name: str, *, limits=None, rules=None, **kwargs):
        if data is not None:
            self.write(data)
        return process_file(
            self.source,
            self.workdir,
            display_name=display_name,
            limits=limits or IngestLimits(),
            rules=rules or {},
            **kwargs,
        )

    def error(self, data: bytes | None, display_name: str, **kwargs) -> IngestError:
        with pytest.raises(IngestError) as caught:
            self(data, display_name, **kwargs)
        return caught.value

    def rows(self, processed) -> list[dict]:
        return pq.read_table(processed.parquet_path).to_pylist()

    def leftovers(self) -> list[str]:
        return sorted(path.name for path in self.workdir.iterdir())


@pytest.fixture
def ingest(tmp_path) -> Ingest:
    return Ingest(tmp_path)
