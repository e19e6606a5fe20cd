"""A safe, declarative expression language for arithmetic over the columns of one row.

    parse_expression("log1p(amount) / max(items, 1)", columns={"amount", "items"}) -> Expr

The text is parsed with Python's `ast` module (mode "eval") and turned into a small tree of our own; anything outside
the whitelist is refused with an `ExpressionError` naming the offending part. The tree is evaluated with vectorised
numpy over a DataFrame, or rendered as DuckDB SQL: user text is never `eval`ed or `exec`ed.

Accepted: numeric literals, column names (from `columns`), unary - and +, binary + - * / // % **, parentheses,
one comparison per node (< <= > >= == !=; chains like `a < b < c` are refused) and the functions in FUNCTIONS.

Semantics (the same in `evaluate` and `to_sql`): every value is a float; a missing input gives a missing result
(NaN / NULL); a result that is not finite (division by zero, log of 0 or of a negative, an overflowing power) is
missing; a comparison is 1.0 or 0.0 (missing when either side is); `where(cond, a, b)` takes `b` where `cond` is 0 or
missing; `coalesce(a, b)` is `a` unless it is missing; `//` and `%` follow Python (floor division, the remainder has
the divisor's sign).
"""

import ast
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MAX_LENGTH = 2000
MAX_DEPTH = 30
MAX_NODES = 300

# name -> number of arguments
FUNCTIONS = {
    "log": 1,
    "log1p": 1,
    "exp": 1,
    "sqrt": 1,
    "abs": 1,
    "clip": 3,
    "min": 2,
    "max": 2,
    "coalesce": 2,
    "where": 3,
}
BINARY_OPERATORS = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
}
UNARY_OPERATORS = {ast.USub: "-", ast.UAdd: "+"}
COMPARISONS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


class ExpressionError(ValueError):
    """The expression is outside the whitelist or malformed; the message names the offending part."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


# --- the tree -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expr:
    """A node of a parsed expression. Subclasses: Literal, Column, Unary, Binary, Compare, Call."""

    @property
    def columns(self) -> set[str]:
        """The column names the expression reads."""
        names: set[str] = set()
        for child in self.children():
            names |= child.columns
        return names

    def children(self) -> tuple["Expr", ...]:
        return ()

    def evaluate(self, frame: pd.DataFrame) -> pd.Series:
        """The expression's value for every row of `frame`, as a float64 Series on its index."""
        with np.errstate(all="ignore"):
            values = np.broadcast_to(self._values(frame), (len(frame),)).astype("float64")
        return pd.Series(values, index=frame.index, dtype="float64")

    def _values(self, frame: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_sql(self) -> str:
        """DuckDB SQL computing the same value (a DOUBLE, NULL where `evaluate` gives NaN)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Literal(Expr):
    value: float

    def _values(self, frame):
        return np.array(self.value, dtype="float64")

    def to_dict(self):
        return {"type": "literal", "value": self.value}

    def to_sql(self):
        return f"CAST({self.value!r} AS DOUBLE)"


@dataclass(frozen=True)
class Column(Expr):
    name: str

    @property
    def columns(self):
        return {self.name}

    def _values(self, frame):
        column = frame[self.name]
        if pd.api.types.is_bool_dtype(column):
            column = column.astype("float64")
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)

    def to_dict(self):
        return {"type": "column", "name": self.name}

    def to_sql(self):
        return f"CAST({quote_identifier(self.name)} AS DOUBLE)"


@dataclass(frozen=True)
class Unary(Expr):
    op: str
    operand: Expr

    def children(self):
        return (self.operand,)

    def _values(self, frame):
        values = self.operand._values(frame)
        return -values if self.op == "-" else values

    def to_dict(self):
        return {"type": "unary", "op": self.op, "operand": self.operand.to_dict()}

    def to_sql(self):
        return f"({self.op}{self.operand.to_sql()})"


@dataclass(frozen=True)
class Binary(Expr):
    op: str
    left: Expr
    right: Expr

    def children(self):
        return (self.left, self.right)

    def _values(self, frame):
        left, right = self.left._values(frame), self.right._values(frame)
        result = {
            "+": np.add,
            "-": np.subtract,
            "*": np.multiply,
            "/": np.divide,
            "//": np.floor_divide,
            "%": np.mod,
            "**": np.power,
        }[self.op](left, right)
        return _finite(result)

    def to_dict(self):
        return {"type": "binary", "op": self.op, "left": self.left.to_dict(), "right": self.right.to_dict()}

    def to_sql(self):
        left, right = self.left.to_sql(), self.right.to_sql()
        divisor = f"NULLIF({right}, 0)"
        sql = {
            "+": f"({left} + {right})",
            "-": f"({left} - {right})",
            "*": f"({left} * {right})",
            "/": f"({left} / {divisor})",
            "//": f"floor({left} / {divisor})",
            "%": f"({left} - {right} * floor({left} / {divisor}))",
            "**": f"pow({left}, {right})",
        }[self.op]
        return _finite_sql(sql)


@dataclass(frozen=True)
class Compare(Expr):
    op: str
    left: Expr
    right: Expr

    def children(self):
        return (self.left, self.right)

    def _values(self, frame):
        left, right = self.left._values(frame), self.right._values(frame)
        result = {
            "<": np.less,
            "<=": np.less_equal,
            ">": np.greater,
            ">=": np.greater_equal,
            "==": np.equal,
            "!=": np.not_equal,
        }[self.op](left, right).astype("float64")
        return np.where(np.isnan(left) | np.isnan(right), np.nan, result)

    def to_dict(self):
        return {"type": "compare", "op": self.op, "left": self.left.to_dict(), "right": self.right.to_dict()}

    def to_sql(self):
        op = {"==": "=", "!=": "<>"}.get(self.op, self.op)
        return f"CAST(({self.left.to_sql()} {op} {self.right.to_sql()}) AS DOUBLE)"


@dataclass(frozen=True)
class Call(Expr):
    function: str
    args: tuple[Expr, ...]

    def children(self):
        return self.args

    def _values(self, frame):
        values = [arg._values(frame) for arg in self.args]
        match self.function:
            case "log":
                return _finite(np.log(np.where(values[0] > 0, values[0], np.nan)))
            case "log1p":
                return _finite(np.log1p(np.where(values[0] > -1, values[0], np.nan)))
            case "exp":
                return _finite(np.exp(values[0]))
            case "sqrt":
                return np.sqrt(np.where(values[0] >= 0, values[0], np.nan))
            case "abs":
                return np.abs(values[0])
            case "clip":
                # NaN bounds propagate like any other missing input.
                return np.minimum(np.maximum(values[0], values[1]), values[2])
            case "min":
                return np.minimum(values[0], values[1])
            case "max":
                return np.maximum(values[0], values[1])
            case "coalesce":
                return np.where(np.isnan(values[0]), values[1], values[0])
            case "where":
                condition = np.nan_to_num(values[0], nan=0.0) != 0
                return np.where(condition, values[1], values[2])
        raise ExpressionError(f"Unknown function '{self.function}'.")  # unreachable: parse refuses it

    def to_dict(self):
        return {"type": "call", "function": self.function, "args": [arg.to_dict() for arg in self.args]}

    def to_sql(self):
        args = [arg.to_sql() for arg in self.args]
        match self.function:
            # DuckDB raises on ln(0) and ln of a negative: guard so both sides give a missing value instead.
            case "log":
                return f"(CASE WHEN {args[0]} > 0 THEN ln({args[0]}) END)"
            case "log1p":
                return f"(CASE WHEN {args[0]} > -1 THEN ln(1 + {args[0]}) END)"
            case "exp":
                return _finite_sql(f"(CASE WHEN {args[0]} < 709.8 THEN exp({args[0]}) END)")
            case "sqrt":
                return f"(CASE WHEN {args[0]} >= 0 THEN sqrt({args[0]}) END)"
            case "abs":
                return f"abs({args[0]})"
            case "clip":
                return _null_if_any_null(f"least(greatest({args[0]}, {args[1]}), {args[2]})", args)
            case "min":
                return _null_if_any_null(f"least({args[0]}, {args[1]})", args)
            case "max":
                return _null_if_any_null(f"greatest({args[0]}, {args[1]})", args)
            case "coalesce":
                return f"coalesce({args[0]}, {args[1]})"
            case "where":
                return f"(CASE WHEN {args[0]} <> 0 THEN {args[1]} ELSE {args[2]} END)"
        raise ExpressionError(f"Unknown function '{self.function}'.")


def _finite(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, np.nan)


def _finite_sql(sql: str) -> str:
    return f"(CASE WHEN isfinite({sql}) THEN {sql} END)"


def _null_if_any_null(sql: str, args: list[str]) -> str:
    # DuckDB's least/greatest skip NULLs; numpy's minimum/maximum propagate NaN. Missing in, missing out.
    missing = " OR ".join(f"{arg} IS NULL" for arg in args)
    return f"(CASE WHEN {missing} THEN NULL ELSE {sql} END)"


def quote_identifier(name: str) -> str:
    """A DuckDB identifier, quoted (any column name is safe inside)."""
    return '"' + name.replace('"', '""') + '"'


# --- parsing --------------------------------------------------------------------------------------------------


def parse_expression(text: str, *, columns: set[str]) -> Expr:
    """The whitelisted tree of `text`, reading only names in `columns`; ExpressionError otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("The expression is empty.")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"The expression is too long ({len(text)} characters; at most {MAX_LENGTH}).")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ExpressionError(f"Not a valid expression: {error.msg} (column {error.offset}).") from None
    except (ValueError, RecursionError, MemoryError):
        raise ExpressionError("Not a valid expression.") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise ExpressionError(f"The expression is too large ({nodes} parts; at most {MAX_NODES}).")
    return _Converter(text, frozenset(columns)).convert(tree.body, depth=1)


class _Converter:
    def __init__(self, text: str, columns: frozenset[str]):
        self.text = text
        self.columns = columns

    def part(self, node: ast.AST) -> str:
        """The source text of `node`, for error messages (shortened)."""
        segment = ast.get_source_segment(self.text.strip(), node) or type(node).__name__
        return segment if len(segment) <= 60 else segment[:57] + "..."

    def convert(self, node: ast.AST, *, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"The expression is nested too deeply (at most {MAX_DEPTH} levels).")
        match node:
            case ast.Constant(value=value):
                return self.literal(node, value)
            case ast.Name(id=name):
                return self.column(name)
            case ast.UnaryOp(op=op, operand=operand) if type(op) in UNARY_OPERATORS:
                return Unary(UNARY_OPERATORS[type(op)], self.convert(operand, depth=depth + 1))
            case ast.BinOp(op=op, left=left, right=right) if type(op) in BINARY_OPERATORS:
                return Binary(
                    BINARY_OPERATORS[type(op)],
                    self.convert(left, depth=depth + 1),
                    self.convert(right, depth=depth + 1),
                )
            case ast.Compare(left=left, ops=[op], comparators=[right]) if type(op) in COMPARISONS:
                return Compare(
                    COMPARISONS[type(op)], self.convert(left, depth=depth + 1), self.convert(right, depth=depth + 1)
                )
            case ast.Compare(ops=ops) if len(ops) > 1:
                raise ExpressionError(f"Chained comparisons are not allowed: '{self.part(node)}'. Compare two values.")
            case ast.Call():
                return self.call(node, depth=depth)
        raise ExpressionError(self.refusal(node))

    def literal(self, node: ast.Constant, value: Any) -> Literal:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ExpressionError(f"Only numbers are allowed as constants, not '{self.part(node)}'.")
        number = float(value) if isinstance(value, float) or abs(value) < 2**63 else math.inf
        if not math.isfinite(number):
            raise ExpressionError(f"The number '{self.part(node)}' is too large.")
        return Literal(number)

    def column(self, name: str) -> Column:
        if name.startswith("__") or name.endswith("__"):
            raise ExpressionError(f"Names with double underscores are not allowed: '{name}'.")
        if name not in self.columns:
            if name in FUNCTIONS:
                raise ExpressionError(f"'{name}' is a function: call it, e.g. {name}(...).")
            raise ExpressionError(f"Unknown column '{name}'.")
        return Column(name)

    def call(self, node: ast.Call, *, depth: int) -> Call:
        if not isinstance(node.func, ast.Name):
            raise ExpressionError(f"Only the functions {', '.join(FUNCTIONS)} can be called, not '{self.part(node)}'.")
        name = node.func.id
        if name not in FUNCTIONS:
            raise ExpressionError(f"Function '{name}' is not allowed. Allowed: {', '.join(FUNCTIONS)}.")
        if node.keywords:
            raise ExpressionError(f"Keyword arguments are not allowed: '{self.part(node)}'.")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise ExpressionError(f"Starred arguments are not allowed: '{self.part(node)}'.")
        if len(node.args) != FUNCTIONS[name]:
            raise ExpressionError(f"{name}() takes {FUNCTIONS[name]} argument(s), got {len(node.args)}.")
        return Call(name, tuple(self.convert(arg, depth=depth + 1) for arg in node.args))

    def refusal(self, node: ast.AST) -> str:
        part = self.part(node)
        kinds = {
            ast.Attribute: "Attribute access",
            ast.Subscript: "Subscripts",
            ast.Lambda: "Lambdas",
            ast.ListComp: "Comprehensions",
            ast.SetComp: "Comprehensions",
            ast.DictComp: "Comprehensions",
            ast.GeneratorExp: "Comprehensions",
            ast.BoolOp: "'and'/'or' (use where(), min() or max())",
            ast.IfExp: "Conditional expressions (use where(cond, a, b))",
            ast.NamedExpr: "Assignments",
            ast.JoinedStr: "Strings",
            ast.List: "Lists",
            ast.Tuple: "Tuples",
            ast.Dict: "Dicts",
            ast.Set: "Sets",
            ast.Await: "'await'",
            ast.Yield: "'yield'",
            ast.YieldFrom: "'yield'",
            ast.Starred: "Starred expressions",
            ast.Slice: "Slices",
        }
        for kind, label in kinds.items():
            if isinstance(node, kind):
                return f"{label} not allowed: '{part}'."
        if isinstance(node, ast.UnaryOp | ast.BinOp):
            return f"Operator not allowed: '{part}'."
        return f"Not allowed in an expression: '{part}'."


# --- the stored form ------------------------------------------------------------------------------------------


def expr_from_dict(data: dict[str, Any], *, columns: set[str] | None = None) -> Expr:
    """The tree stored by `Expr.to_dict()`, checked again (a stored tree is input too). `columns`, when given,
    limits the names it may read."""
    return _from_dict(data, columns, depth=1)


def _from_dict(data: Any, columns: set[str] | None, *, depth: int) -> Expr:
    if depth > MAX_DEPTH:
        raise ExpressionError(f"The expression is nested too deeply (at most {MAX_DEPTH} levels).")
    if not isinstance(data, dict):
        raise ExpressionError("A stored expression node must be an object.")
    kind = data.get("type")
    if kind == "literal":
        value = data.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ExpressionError("A stored literal must be a finite number.")
        return Literal(float(value))
    if kind == "column":
        name = data.get("name")
        if not isinstance(name, str) or name.startswith("__") or (columns is not None and name not in columns):
            raise ExpressionError(f"Unknown column {name!r}.")
        return Column(name)
    if kind == "unary" and data.get("op") in UNARY_OPERATORS.values():
        return Unary(data["op"], _from_dict(data.get("operand"), columns, depth=depth + 1))
    if kind in ("binary", "compare"):
        allowed = BINARY_OPERATORS.values() if kind == "binary" else COMPARISONS.values()
        if data.get("op") not in allowed:
            raise ExpressionError(f"Unknown operator {data.get('op')!r}.")
        node = Binary if kind == "binary" else Compare
        left = _from_dict(data.get("left"), columns, depth=depth + 1)
        return node(data["op"], left, _from_dict(data.get("right"), columns, depth=depth + 1))
    if kind == "call":
        function, args = data.get("function"), data.get("args")
        if function not in FUNCTIONS or not isinstance(args, list) or len(args) != FUNCTIONS[function]:
            raise ExpressionError(f"Unknown function or wrong arguments: {function!r}.")
        return Call(function, tuple(_from_dict(arg, columns, depth=depth + 1) for arg in args))
    raise ExpressionError(f"Unknown stored expression node {kind!r}.")
