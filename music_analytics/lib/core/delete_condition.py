"""A `delete_condition` (Tinybird's Data Sources API) checked and turned into SQL safely.

The caller's text is never pasted into SQL. DuckDB's own parser reads it, as the WHERE clause
of `select 1 from t where <condition>` (`json_serialize_sql`); the statement must be exactly
that (one SELECT, no GROUP BY, LIMIT, UNION, CTE...), and its WHERE tree is walked against a
whitelist: one boolean expression over the data source's columns made of comparisons, AND /
OR / NOT, IN lists, BETWEEN, IS [NOT] NULL, [NOT] [I]LIKE, casts to plain types and a few
functions (`ALLOWED_FUNCTIONS`); no subqueries, table functions or other calls. The SQL is then
emitted from the checked tree: column names from the data source's own list, every literal as
a `?` parameter. `parse_condition` raises ConditionError, naming the problem, for anything else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import duckdb

MAX_CONDITION_CHARS = 4000
MAX_DEPTH = 32
MAX_NODES = 500
_PREFIX = "select 1 from t where "

COMPARISONS = {
    "COMPARE_EQUAL": "=",
    "COMPARE_NOTEQUAL": "<>",
    "COMPARE_LESSTHAN": "<",
    "COMPARE_GREATERTHAN": ">",
    "COMPARE_LESSTHANOREQUALTO": "<=",
    "COMPARE_GREATERTHANOREQUALTO": ">=",
    "COMPARE_DISTINCT_FROM": "is distinct from",
    "COMPARE_NOT_DISTINCT_FROM": "is not distinct from",
}
# DuckDB spells LIKE and friends as operator functions.
LIKE_OPERATORS = {"~~": "like", "!~~": "not like", "~~*": "ilike", "!~~*": "not ilike"}
ALLOWED_FUNCTIONS = frozenset(
    {"lower", "upper", "trim", "length", "year", "month", "day", "date_trunc", "starts_with"}
)
CAST_TYPES = {
    "date": "date",
    "timestamp": "timestamp",
    "datetime": "timestamp",
    "varchar": "varchar",
    "string": "varchar",
    "text": "varchar",
    "integer": "integer",
    "int": "integer",
    "bigint": "bigint",
    "double": "double",
    "boolean": "boolean",
}


class ConditionError(ValueError):
    """The condition is not one safe boolean expression over the columns; says why."""


@dataclass(frozen=True)
class Condition:
    """A checked condition: `sql` with `?` placeholders for `params`, and its columns."""

    text: str
    sql: str
    params: list = field(default_factory=list)
    columns: frozenset[str] = frozenset()


def parse_condition(text: str, columns: Iterable[str]) -> Condition:
    """The condition as SQL over `columns`, or ConditionError naming what is not allowed."""
    allowed = {c.lower(): c for c in columns}
    if not isinstance(text, str) or not text.strip():
        raise ConditionError(
            "parameter 'delete_condition' is empty: give a condition, e.g. user_id = 'u1'"
        )
    if len(text) > MAX_CONDITION_CHARS:
        raise ConditionError(f"parameter 'delete_condition' is over {MAX_CONDITION_CHARS} chars")
    if "\x00" in text:
        raise ConditionError("parameter 'delete_condition' holds a NUL character")
    with duckdb.connect() as conn:
        try:
            serialized = conn.execute("select json_serialize_sql(?)", [_PREFIX + text]).fetchone()
        except duckdb.Error as exc:  # e.g. past DuckDB's own expression depth
            first = (str(exc).strip().splitlines() or ["unreadable"])[0][:200]
            raise ConditionError(f"delete_condition is not one SQL condition: {first}") from None
    serialized = serialized[0]
    try:
        tree = json.loads(serialized)
    except RecursionError:
        raise ConditionError(f"delete_condition is too complex (over {MAX_DEPTH} levels)") from None
    if tree.get("error"):
        message = str(tree.get("error_message", "not a condition")).splitlines()[0][:200]
        raise ConditionError(f"delete_condition is not one SQL condition: {message}")
    where = _only_where(tree)
    emitter = _Emitter(allowed)
    sql = emitter.emit(where, 0)  # refuses what is not allowed, naming it
    if not _is_boolean(where):
        raise ConditionError(
            "delete_condition is not a boolean expression: compare a column, e.g. user_id = 'u1'"
        )
    return Condition(text, sql, emitter.params, frozenset(emitter.used))


def _is_boolean(node: dict) -> bool:
    """Whether the tree's top is a test (a comparison, AND/OR/NOT, IN, LIKE...), not a value."""
    kind = node.get("class")
    if kind in ("COMPARISON", "CONJUNCTION", "BETWEEN", "OPERATOR"):
        return True
    if kind == "FUNCTION":
        return str(node.get("function_name", "")).lower() in (*LIKE_OPERATORS, "starts_with")
    return kind == "CONSTANT" and (node.get("literal") or {}).get("kind") == "BOOLEAN"


def _only_where(tree: dict) -> dict:
    """The WHERE tree of `select 1 from t where ...`, refusing anything the condition added."""
    statements = tree.get("statements") or []
    if len(statements) != 1:
        raise ConditionError("delete_condition must be one condition, not several statements")
    node = statements[0].get("node") or {}
    base = node.get("from_table") or {}
    problems = [
        node.get("type") != "SELECT_NODE" and "a set operation (UNION, EXCEPT...)",
        node.get("modifiers") and "ORDER BY, LIMIT or DISTINCT",
        (node.get("cte_map") or {}).get("map") and "a WITH clause",
        node.get("group_expressions") and "GROUP BY",
        node.get("having") and "HAVING",
        node.get("qualify") and "QUALIFY",
        node.get("sample") and "USING SAMPLE",
        (base.get("type") != "BASE_TABLE" or base.get("table_name") != "t" or base.get("sample"))
        and "a FROM clause",
        len(node.get("select_list") or []) != 1 and "a select list",
    ]
    found = [p for p in problems if p]
    if found:
        raise ConditionError(f"delete_condition holds {found[0]}: give one boolean expression")
    if node.get("where_clause") is None:
        raise ConditionError("delete_condition is not a condition")
    return node["where_clause"]


class _Emitter:
    """SQL text of a whitelisted expression tree; literals become parameters."""

    def __init__(self, columns: dict[str, str]) -> None:
        self.columns = columns
        self.params: list = []
        self.used: set[str] = set()
        self.nodes = 0

    def emit(self, node: dict, depth: int) -> str:
        self.nodes += 1
        if depth > MAX_DEPTH or self.nodes > MAX_NODES:
            raise ConditionError(
                f"delete_condition is too complex (over {MAX_DEPTH} levels or {MAX_NODES} parts)"
            )
        kind, sub = node.get("class"), node.get("type")
        if node.get("alias"):
            raise ConditionError("delete_condition holds an alias (AS): remove it")
        if kind == "COLUMN_REF":
            return self._column(node)
        if kind == "CONSTANT":
            return self._constant(node["literal"])
        if kind == "COMPARISON" and sub in COMPARISONS:
            left = self.emit(node["left"], depth + 1)
            return f"({left} {COMPARISONS[sub]} {self.emit(node['right'], depth + 1)})"
        if kind == "CONJUNCTION" and sub in ("CONJUNCTION_AND", "CONJUNCTION_OR"):
            joiner = " and " if sub == "CONJUNCTION_AND" else " or "
            return "(" + joiner.join(self.emit(c, depth + 1) for c in node["children"]) + ")"
        if kind == "BETWEEN":
            parts = [self.emit(node[k], depth + 1) for k in ("input", "lower", "upper")]
            return f"({parts[0]} between {parts[1]} and {parts[2]})"
        if kind == "OPERATOR":
            return self._operator(sub, node["children"], depth)
        if kind == "CAST":
            return self._cast(node, depth)
        if kind == "FUNCTION":
            return self._function(node, depth)
        what = {"SUBQUERY": "a subquery", "STAR": "*", "WINDOW": "a window function"}.get(
            kind, f"{str(kind).lower()} ({str(sub).lower()})"
        )
        raise ConditionError(f"delete_condition holds {what}, which is not allowed")

    def _column(self, node: dict) -> str:
        names = node.get("column_names") or []
        if len(names) != 1:
            raise ConditionError(
                f"delete_condition names {'.'.join(names)[:80]!r}: use a plain column name"
            )
        column = self.columns.get(names[0].lower())
        if column is None:
            raise ConditionError(
                f"delete_condition names no column {names[0][:80]!r}; the columns are "
                f"{', '.join(sorted(self.columns.values()))}"
            )
        self.used.add(column)
        return f'"{column}"'

    def _constant(self, literal: dict) -> str:
        kind, text = literal.get("kind"), literal.get("text", "")
        if kind == "NULL_LITERAL":
            return "null"
        if kind == "STRING":
            self.params.append(text)
        elif kind in ("INTEGER", "BIGINT", "HUGEINT", "UBIGINT", "SMALLINT", "TINYINT"):
            self.params.append(int(text))
        elif kind in ("NUMERIC", "DECIMAL", "DOUBLE", "FLOAT"):
            self.params.append(float(text))
        elif kind == "BOOLEAN":
            self.params.append(text.lower() == "true")
        else:
            raise ConditionError(
                f"delete_condition holds a {str(kind).lower()} literal, which is not allowed"
            )
        return "?"

    def _operator(self, sub: str, children: list, depth: int) -> str:
        parts = [self.emit(c, depth + 1) for c in children]
        if sub == "OPERATOR_NOT" and len(parts) == 1:
            return f"(not {parts[0]})"
        if sub == "OPERATOR_IS_NULL" and len(parts) == 1:
            return f"({parts[0]} is null)"
        if sub == "OPERATOR_IS_NOT_NULL" and len(parts) == 1:
            return f"({parts[0]} is not null)"
        if sub in ("COMPARE_IN", "COMPARE_NOT_IN") and len(parts) >= 2:
            negation = "not " if sub == "COMPARE_NOT_IN" else ""
            return f"({parts[0]} {negation}in ({', '.join(parts[1:])}))"
        raise ConditionError(f"delete_condition holds the operator {sub.lower()}, not allowed")

    def _cast(self, node: dict, depth: int) -> str:
        type_expr = node.get("type_expr") or {}
        name = str(type_expr.get("type_name", "")).lower()
        if name not in CAST_TYPES or type_expr.get("children") or node.get("try_cast"):
            raise ConditionError(
                f"delete_condition casts to {name[:40]!r}: only {', '.join(CAST_TYPES)}"
            )
        return f"cast({self.emit(node['child'], depth + 1)} as {CAST_TYPES[name]})"

    def _function(self, node: dict, depth: int) -> str:
        name = str(node.get("function_name", "")).lower()
        if node.get("schema") or node.get("catalog") or node.get("distinct"):
            raise ConditionError(f"delete_condition calls {name[:40]!r} in a way not allowed")
        if node.get("filter") or (node.get("order_bys") or {}).get("orders"):
            raise ConditionError(f"delete_condition calls {name[:40]!r} in a way not allowed")
        arguments = node.get("arguments") or []
        if any(a.get("name") for a in arguments):
            raise ConditionError(f"delete_condition calls {name[:40]!r} with named arguments")
        parts = [self.emit(a["expression"], depth + 1) for a in arguments]
        if name in LIKE_OPERATORS and len(parts) == 2:
            return f"({parts[0]} {LIKE_OPERATORS[name]} {parts[1]})"
        if name in ALLOWED_FUNCTIONS and not node.get("is_operator"):
            return f"{name}({', '.join(parts)})"
        raise ConditionError(
            f"delete_condition calls {name[:40]!r}: only {', '.join(sorted(ALLOWED_FUNCTIONS))} "
            "and LIKE / ILIKE are allowed"
        )
