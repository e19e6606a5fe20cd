"""The two wire protocols, parsed into `{column: [values]}` and answered in their published shapes.

Open Inference Protocol V2 (KServe, Triton, MLServer): one tensor per column, named like the column:
    {"inputs": [{"name": "age", "shape": [2], "datatype": "FP64", "data": [41.0, 29.5]},
                {"name": "colour", "shape": [2, 1], "datatype": "BYTES", "data": [["red"], ["blue"]]}],
     "id"?: "...", "parameters"?: {...}}
`shape` is [rows] or [rows, 1]; `data` flat or nested one level. `datatype` must describe the values (BYTES for text,
BOOL, INT*/UINT*, FP*); null marks a missing value (a nullable column). A single 2-D tensor of all columns is not
accepted: a column's name is its tensor's name. Errors: {"error": "..."}.

MLflow scoring server: exactly one of
    {"dataframe_split": {"columns": [...], "data": [[...], ...]}}, {"dataframe_records": [{col: value}, ...]},
    {"instances": [{col: value}, ...] | {col: [values]}}, {"inputs": same as instances}
(plus an optional "params" object, accepted and ignored); answers {"predictions": [...]}. Errors:
{"error_code": "BAD_REQUEST", "message": "..."}.
"""

import math
from typing import Any

from workers.serving.validation import InputError

MLFLOW_INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
V2_DATATYPES = {
    "BOOL": "bool",
    "BYTES": "text",
    **{name: "int" for name in ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")},
    **{name: "number" for name in ("FP16", "FP32", "FP64")},
}


def _fits(value: Any, family: str) -> bool:
    if value is None:
        return True
    if family == "bool":
        return isinstance(value, bool)
    if family == "text":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if family == "int":
        return isinstance(value, int)
    return isinstance(value, int | float)


def _v2_tensor(tensor: Any, position: int) -> tuple[str, list[Any]]:
    where = f"inputs[{position}]"
    if not isinstance(tensor, dict):
        raise InputError(where, "expected a tensor object {name, shape, datatype, data}.")
    name, shape, datatype, data = (tensor.get(key) for key in ("name", "shape", "datatype", "data"))
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}.name", "the column name is required.")
    where = f"inputs[{position}] ({name})"
    if datatype not in V2_DATATYPES:
        raise InputError(f"{where}.datatype", f"one of {', '.join(V2_DATATYPES)}, got {datatype!r}.")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in shape)
        or (len(shape) == 2 and shape[1] != 1)
    ):
        raise InputError(f"{where}.shape", "one tensor per column: [rows] or [rows, 1].")
    if not isinstance(data, list):
        raise InputError(f"{where}.data", "expected an array.")
    values = [item[0] if isinstance(item, list) and len(item) == 1 else item for item in data]
    if len(values) != shape[0]:
        raise InputError(f"{where}.data", f"{len(values)} values for shape {shape}.")
    family = V2_DATATYPES[datatype]
    for row, value in enumerate(values):
        if isinstance(value, float) and not math.isfinite(value):
            continue  # refused by the signature check, with the column's own message
        if not _fits(value, family):
            raise InputError(f"{where}.data", f"row {row}: {value!r} is not {datatype}.")
    return name, values


def v2_columns(body: Any) -> dict[str, list[Any]]:
    if not isinstance(body, dict):
        raise InputError("body", "expected a JSON object with 'inputs'.")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InputError("inputs", "a non-empty array of tensors is required.")
    if "parameters" in body and not isinstance(body["parameters"], dict):
        raise InputError("parameters", "expected an object.")
    if "id" in body and not isinstance(body["id"], str):
        raise InputError("id", "expected a string.")
    columns: dict[str, list[Any]] = {}
    for position, tensor in enumerate(inputs):
        name, values = _v2_tensor(tensor, position)
        if name in columns:
            raise InputError(f"inputs[{position}].name", f"{name!r} is sent twice.")
        columns[name] = values
    return columns


def _records_columns(records: Any, field: str) -> dict[str, list[Any]]:
    if not isinstance(records, list) or not records:
        raise InputError(field, "expected a non-empty array of row objects.")
    if not all(isinstance(record, dict) for record in records):
        raise InputError(field, "every row must be an object {column: value}.")
    names = list(dict.fromkeys(name for record in records for name in record))
    for row, record in enumerate(records):
        absent = [name for name in names if name not in record]
        if absent:
            raise InputError(absent[0], f"row {row}: this column is missing.")
    return {name: [record[name] for record in records] for name in names}


def _split_columns(split: Any) -> dict[str, list[Any]]:
    field = "dataframe_split"
    if not isinstance(split, dict):
        raise InputError(field, "expected an object {columns, data}.")
    columns, data = split.get("columns"), split.get("data")
    if not isinstance(columns, list) or not all(isinstance(name, str) for name in columns):
        raise InputError(f"{field}.columns", "expected an array of column names.")
    if len(set(columns)) != len(columns):
        raise InputError(f"{field}.columns", "a column is named twice.")
    if not isinstance(data, list) or not data:
        raise InputError(f"{field}.data", "expected a non-empty array of rows.")
    for row, values in enumerate(data):
        if not isinstance(values, list) or len(values) != len(columns):
            raise InputError(f"{field}.data", f"row {row}: expected an array of {len(columns)} values.")
    return {name: [values[index] for values in data] for index, name in enumerate(columns)}


def _tensor_columns(value: Any, field: str) -> dict[str, list[Any]]:
    if isinstance(value, dict):
        if not all(isinstance(values, list) for values in value.values()):
            raise InputError(field, "as an object, every column must be an array of values.")
        return dict(value)
    if isinstance(value, list) and value and not all(isinstance(record, dict) for record in value):
        raise InputError(field, "this model takes named columns: send row objects or {column: [values]}.")
    return _records_columns(value, field)


def mlflow_columns(body: Any) -> dict[str, list[Any]]:
    if not isinstance(body, dict):
        raise InputError("body", f"expected a JSON object with one of: {', '.join(MLFLOW_INPUT_KEYS)}.")
    given = [key for key in MLFLOW_INPUT_KEYS if key in body]
    unknown = sorted(set(body) - {*MLFLOW_INPUT_KEYS, "params"})
    if unknown:
        raise InputError(unknown[0], f"unknown field; send exactly one of: {', '.join(MLFLOW_INPUT_KEYS)}.")
    if len(given) != 1:
        raise InputError("body", f"send exactly one of: {', '.join(MLFLOW_INPUT_KEYS)} (got {len(given)}).")
    if "params" in body and not isinstance(body["params"], dict):
        raise InputError("params", "expected an object.")
    key = given[0]
    if key == "dataframe_split":
        return _split_columns(body[key])
    if key == "dataframe_records":
        return _records_columns(body[key], key)
    return _tensor_columns(body[key], key)


def v2_error(message: str) -> dict[str, str]:
    return {"error": message}


def mlflow_error(message: str) -> dict[str, str]:
    return {"error_code": "BAD_REQUEST", "message": message}


def v2_datatype(values: list[Any]) -> str:
    if all(isinstance(value, bool) for value in values):
        return "BOOL"
    if all(isinstance(value, int) and not isinstance(value, bool) for value in values):
        return "INT64"
    if all(isinstance(value, int | float) and not isinstance(value, bool) for value in values):
        return "FP64"
    return "BYTES"
