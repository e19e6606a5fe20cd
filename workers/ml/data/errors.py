"""The one exception for bad input: a stable machine code and a sentence for the user that names the problem."""

CODES = (
    "empty_file",
    "header_only",
    "not_utf8",
    "ragged_rows",
    "unbalanced_quotes",
    "duplicate_column_names",
    "empty_column_name",
    "binary_file",
    "decompression_bomb",
    "too_large",
    "too_many_columns",
    "cell_too_long",
    "unsafe_parquet",
    "unsupported_format",
    "invalid_json",
    "sql_not_read_only",
    "sql_error",
    "source_unavailable",
)


class IngestError(Exception):
    """Bad input, with a stable machine code and a sentence for the user that names the problem."""

    def __init__(self, code: str, message: str, *, column: str | None = None):
        if code not in CODES:
            raise ValueError(f"unknown ingest error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.column = column

    def __repr__(self) -> str:
        return f"IngestError({self.code!r}, {self.message!r}, column={self.column!r})"
