"""What a read-only user of the store server may run: an allow-list, judged on ClickHouse's own
parse of the statement, never on the words in it.

The engine parses the statement (``parseQueryToJSON``, or ``EXPLAIN AST`` for DESCRIBE and
EXISTS, which that function cannot serialise; both only parse, neither executes) and
:class:`ReaderPolicy` walks the tree. Allowed are ``SELECT``/``WITH`` (with UNION, JOIN, ARRAY
JOIN, subqueries, CTEs, lambdas, window functions), ``DESCRIBE``, ``SHOW TABLES``/``DATABASES``/
``COLUMNS`` and ``EXISTS``, reading only:

- tables of the audit database(s), the short list :data:`SYSTEM_TABLES`, and CTEs a query
  defines in an enclosing scope (a name is a CTE only where ClickHouse resolves it to one);
- the table functions :data:`TABLE_FUNCTIONS`, which read nothing outside the store;
- ordinary and aggregate functions whose category (``system.functions``) is one of
  :data:`FUNCTION_CATEGORIES`, plus the named :data:`EXTRA_FUNCTIONS`. ``file``, ``url``,
  ``sleep``, ``getSetting``, ``joinGet``, ``dictGet``, ``hostName``, the AI and ML functions
  and everything else of category ``Other`` or none are therefore refused without being named.

Settings are the server's: a ``SETTINGS`` clause is refused, URL settings are refused with
ClickHouse's READONLY error except the output settings clients send (:data:`READER_SETTINGS`)
and limits, which a reader may lower but never raise (a higher or unlimited value is held to
the server's); every statement then runs with the server's limits and
``readonly = 1`` appended as its own ``SETTINGS`` clause (:meth:`ReaderLimits.clause`), so that
the engine enforces them too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SYSTEM_TABLES = frozenset(
    {"one", "numbers", "numbers_mt", "zeros", "zeros_mt", "functions", "table_functions"}
    | {"settings", "formats", "data_type_families", "time_zones", "collations", "keywords"}
    | {"aggregate_function_combinators"}
)
"""System tables that describe the engine, not the host: no paths, no queries, no other
databases. ``system.settings`` is here because clickhouse-connect reads it on connect (the
session's settings hold no path). ``system.tables``, ``columns`` and ``databases`` are not: their
rows cover every database and carry data and metadata paths; ``SHOW TABLES``/``SHOW COLUMNS``
give the names instead."""

TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "values", "generate_series", "generateSeries"}
    | {"primes", "view"}
)
"""Table functions that make rows from their arguments (``view`` runs a subquery, which is
checked like any other)."""

FUNCTION_CATEGORIES = frozenset(
    {"Arithmetic", "Comparison", "Logical", "Conditional", "Dates and Times", "String"}
    | {"String Search", "String Splitting", "String Replacement", "Arrays", "Type Conversion"}
    | {"Hash", "Mathematical", "Rounding", "JSON", "Map", "Tuple", "UUID", "Null", "Encoding"}
    | {"Aggregate Functions", "Bit", "Bitmap", "IP Address", "URL", "Random Number", "Distance"}
    | {"Financial", "Time Window", "Geo", "Geo Polygon", "Encryption", "Time Series"}
)
"""Categories of ``system.functions`` whose functions compute on their arguments only."""

EXTRA_FUNCTIONS = frozenset(
    {"lambda", "exists", "grouping", "_CAST", "caseWithExpression", "identity", "ignore"}
    | {"materialize", "toTypeName", "toColumnTypeName", "isConstant", "transform", "bar"}
    | {"formatReadableSize", "formatReadableQuantity", "formatReadableDecimalSize"}
    | {"formatReadableTimeDelta", "parseReadableSize", "parseReadableSizeOrNull"}
    | {"parseReadableSizeOrZero", "parseTimeDelta", "visibleWidth", "countDigits"}
    | {"currentDatabase", "version", "throwIf", "neighbor", "runningDifference"}
    | {"runningDifferenceStartingWithFirstValue", "rowNumberInBlock", "rowNumberInAllBlocks"}
    | {"blockSize", "finalizeAggregation", "initializeAggregation", "variantElement"}
    | {"variantType", "getSubcolumn", "defaultValueOfArgumentType", "defaultValueOfTypeName"}
    | {"indexHint", "errorCodeToName", "byteSize", "MACNumToString", "MACStringToNum"}
    | {"MACStringToOUI", "isDecimalOverflow", "getSizeOfEnumType", "parseISO8601Duration"}
    | {"lowCardinalityIndices", "lowCardinalityKeys"}
)
"""Functions outside those categories (``Other``, ``Internal``, syntax) that only compute: the
lambda and EXISTS forms, CASE and ``::``, type and formatting helpers."""

AGGREGATE_COMBINATORS = (
    "SimpleState",
    "MergeState",
    "OrDefault",
    "Resample",
    "Distinct",
    "ForEach",
    "ArgMin",
    "ArgMax",
    "OrNull",
    "State",
    "Merge",
    "Array",
    "Map",
    "If",
)
"""Suffixes that make a new aggregate from one (``sumIf``, ``uniqExactState``)."""

READER_SETTINGS = frozenset(
    {"date_time_input_format", "date_time_output_format", "cast_string_to_dynamic_use_inference"}
    | {"output_format_json_quote_64bit_integers", "output_format_json_quote_64bit_floats"}
    | {"output_format_json_quote_denormals", "output_format_json_quote_decimals"}
    | {"output_format_json_named_tuples_as_objects", "output_format_json_validate_utf8"}
    | {"output_format_json_array_of_rows", "output_format_write_statistics"}
    | {"output_format_arrow_string_as_string", "output_format_arrow_low_cardinality_as_dictionary"}
    | {"output_format_native_encode_types_in_binary_format", "output_format_decimal_trailing_zeros"}
    | {"output_format_csv_crlf_end_of_line", "output_format_tsv_crlf_end_of_line"}
    | {"format_csv_delimiter", "output_format_pretty_max_rows", "output_format_pretty_color"}
    | {"session_timezone", "extremes", "use_client_time_zone"}
)
"""URL settings a reader may send: how results are written and times read. clickhouse-connect
sends the first three and the JSON/Arrow ones; none reaches a file, the network or a limit."""

_LIMIT_NAMES = {
    "max_execution_time": "max_execution_time_s",
    "max_memory_usage": "max_memory_bytes",
    "max_result_rows": "max_result_rows",
    "max_result_bytes": "max_result_bytes",
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IN_FUNCTIONS = frozenset(
    {"in", "notIn", "globalIn", "globalNotIn", "nullIn", "notNullIn", "globalNullIn"}
    | {"globalNotNullIn"}
)
_SHOW_FLAGS = frozenset(
    {"type", "like", "from", "databases", "full", "not_like", "case_insensitive_like"}
    | {"limit_length", "is_outfile_append", "is_outfile_truncate", "is_into_outfile_with_stdout"}
    | {"format_ast"}
)
_NODE_TYPES = frozenset(
    {"SelectWithUnionQuery", "SelectIntersectExceptQuery", "SelectQuery", "ExpressionList"}
    | {"WithElement", "Subquery", "Literal", "Identifier", "Function", "Asterisk"}
    | {"QualifiedAsterisk", "ColumnsRegexpMatcher", "ColumnsListMatcher"}
    | {"QualifiedColumnsRegexpMatcher", "QualifiedColumnsListMatcher", "ColumnsTransformerList"}
    | {"ColumnsExceptTransformer", "ColumnsReplaceTransformer", "ColumnsApplyTransformer"}
    | {"ColumnsReplaceTransformerReplacement", "TablesInSelectQuery", "TableJoin", "ArrayJoin"}
    | {"TablesInSelectQueryElement", "TableExpression", "TableIdentifier", "OrderByElement"}
    | {"InterpolateElement", "WindowDefinition", "WindowListElement", "SampleRatio"}
    | {"QueryParameter", "ShowTablesQuery", "ShowColumnsQuery"}
)


class ReaderRefusal(Exception):
    """A statement or setting the reader may not use, in ClickHouse's terms."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message


@dataclass(frozen=True)
class ReaderLimits:
    """The server's profile for readers; the engine enforces each (``SETTINGS`` per statement)."""

    max_execution_time_s: float = 30.0
    max_memory_bytes: int = 2 << 30
    max_result_rows: int = 1_000_000
    max_result_bytes: int = 256 << 20

    def clause(self, requested: Mapping[str, str]) -> str:
        """The ``SETTINGS`` clause for one statement: the reader's allowed settings, then the
        limits (lowered where the reader asked), then ``readonly = 1`` last."""
        limits = {
            "max_execution_time": _number(self.max_execution_time_s),
            "max_memory_usage": str(self.max_memory_bytes),
            "max_result_rows": str(self.max_result_rows),
            "max_result_bytes": str(self.max_result_bytes),
        }
        parts = [f"{k} = {_quote(v)}" for k, v in requested.items() if k not in limits]
        limits.update({k: v for k, v in requested.items() if k in limits})
        parts += [f"{k} = {v}" for k, v in limits.items()]
        parts += ["timeout_overflow_mode = 'throw'", "result_overflow_mode = 'throw'"]
        parts += ["readonly = 1"]
        return "\nSETTINGS " + ", ".join(parts)

    def request_settings(self, user: str, settings: Mapping[str, str]) -> dict[str, str]:
        """The URL settings a reader sent, if each is allowed; else ClickHouse's refusal."""
        allowed: dict[str, str] = {}
        for name, value in settings.items():
            if name in _LIMIT_NAMES:
                ceiling = float(getattr(self, _LIMIT_NAMES[name]))
                try:
                    number = float(value)
                except ValueError:
                    raise ReaderRefusal(
                        27, "CANNOT_PARSE_INPUT_ASSERTION_FAILED", f"Bad value for {name}: {value}"
                    ) from None
                if number < 0 or number != number:  # negative, or NaN
                    raise ReaderRefusal(
                        452, "SETTING_CONSTRAINT_VIOLATION", f"Setting {name} is out of range"
                    )
                # Lower is the reader's to choose; higher, or 0 (no limit), is held to the
                # server's: Grafana sends its query timeout as max_execution_time every time.
                if 0 < number < ceiling:
                    allowed[name] = (
                        _number(number) if name == "max_execution_time" else str(int(number))
                    )
            elif name in READER_SETTINGS:
                allowed[name] = value
            else:
                raise ReaderRefusal(
                    164, "READONLY", f"{user}: Cannot modify '{name}' setting in readonly mode"
                )
        return allowed


class ReaderPolicy:
    """The allow-list, with the function catalogue read from the engine it guards."""

    def __init__(
        self,
        functions: Iterable[tuple[str, int, int, str, str]],
        databases: Iterable[str],
    ) -> None:
        """``functions``: rows of ``system.functions`` (name, is_aggregate, case_insensitive,
        alias_to, categories); ``databases``: the audit databases a reader may read."""
        rows = {
            name: (aggregate, insensitive, alias, cats)
            for name, aggregate, insensitive, alias, cats in functions
        }
        self.databases = frozenset(databases)
        self._functions: dict[str, bool] = {}  # allowed name -> is aggregate
        for name, (aggregate, insensitive, alias, _) in rows.items():
            target = rows.get(alias, rows[name]) if alias else rows[name]
            categories = {c.strip() for c in target[3].split(",")}
            if categories & FUNCTION_CATEGORIES or (alias or name) in EXTRA_FUNCTIONS:
                self._functions[name] = bool(aggregate or target[0])
                if insensitive:
                    self._functions[name.lower()] = bool(aggregate or target[0])
        for name in EXTRA_FUNCTIONS:
            self._functions.setdefault(name, False)

    @classmethod
    def from_engine(cls, query: Callable[[str], bytes], databases: Iterable[str]) -> ReaderPolicy:
        raw = query(
            "SELECT name, is_aggregate, case_insensitive, alias_to, categories "
            "FROM system.functions FORMAT JSONCompact"
        )
        rows = [tuple(row) for row in json.loads(raw)["data"]]
        return cls(rows, databases)

    # -- statements -----------------------------------------------------------------------

    def check_tree(self, tree: Mapping[str, Any], database: str) -> None:
        """Refuse a parsed SELECT/WITH/SHOW (``parseQueryToJSON``) that reads outside."""
        kind = tree.get("type")
        if kind == "ShowTablesQuery":
            flags = sorted(k for k, v in tree.items() if k not in _SHOW_FLAGS and v)
            if flags:
                raise _readonly(f"SHOW {flags[0].upper()}")
            return
        if kind == "ShowColumnsQuery":
            table = str(tree.get("table", ""))
            self._check_table([str(tree.get("database") or database), table], (), database)
            return
        if kind not in ("SelectWithUnionQuery", "SelectIntersectExceptQuery"):
            raise _readonly(str(kind or "this statement"))
        if tree.get("out_file") is not None:
            raise _readonly("INTO OUTFILE")
        self._walk(tree, (), database)

    def check_explained(self, lines: list[str], database: str) -> None:
        """Refuse a DESCRIBE or EXISTS (``EXPLAIN AST`` lines) that reads outside."""
        heads = [line.split(" ", 2) for line in (x.strip() for x in lines) if line]
        if not heads:
            raise _readonly("an empty statement")
        if heads[0][0].startswith("Exists"):
            if any(h[0] not in ("Identifier",) for h in heads[1:]):
                raise _readonly("EXISTS with anything but a name")
            return
        shape = [h[0] for h in heads]
        if heads[0][0] != "DescribeQuery" or shape[1:] != ["TableExpression", "TableIdentifier"]:
            raise _readonly("DESCRIBE of anything but a table")
        name = heads[2][1] if len(heads[2]) > 1 else ""
        if len(heads[2]) > 2 or not re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?", name):
            raise _denied(f"DESCRIBE {name}")
        self._check_table(name.split("."), (), database)

    # -- the walk -------------------------------------------------------------------------

    def _walk(self, node: Any, scopes: tuple[frozenset[str], ...], database: str) -> None:
        if isinstance(node, list):
            for item in node:
                self._walk(item, scopes, database)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind is None:  # a plain value holder (a literal's value, a SETTINGS change)
            return
        if kind == "SetQuery":
            raise ReaderRefusal(
                164, "READONLY", "Cannot modify settings in readonly mode (a SETTINGS clause)"
            )
        if kind not in _NODE_TYPES:
            raise _readonly(str(kind))
        if kind == "SelectQuery":
            with_list = node.get("with") or {}
            names = {
                str(item.get("name"))
                for item in with_list.get("children", ())
                if isinstance(item, dict) and item.get("type") == "WithElement"
            }
            scopes = (*scopes, frozenset(names))
        elif kind == "QueryParameter" and node.get("param_type") == "Identifier":
            raise _denied("an Identifier query parameter (it could name any table)")
        elif kind == "TableExpression":
            function = node.get("table_function")
            if isinstance(function, dict):
                name = str(function.get("name", ""))
                if name not in TABLE_FUNCTIONS:
                    raise ReaderRefusal(
                        164,
                        "READONLY",
                        f"Cannot execute query in readonly mode: table function {name} "
                        "is not allowed",
                    )
                self._walk(function.get("arguments"), scopes, database)
                rest = {k: v for k, v in node.items() if k != "table_function"}
                self._walk(list(rest.values()), scopes, database)
                return
        elif kind == "TableIdentifier":
            if node.get("children"):
                raise _denied("a table named by a query parameter")
            parts = node.get("name_parts") or [node.get("name", "")]
            self._check_table([str(p) for p in parts], scopes, database)
        elif kind == "Function":
            name = str(node.get("name", ""))
            self._check_function(name)
            args = (node.get("arguments") or {}).get("children") or []
            if name in _IN_FUNCTIONS and len(args) == 2 and args[1].get("type") == "Identifier":
                parts = args[1].get("name_parts") or [args[1].get("name", "")]
                if args[1].get("children"):
                    raise _denied("IN a table named by a query parameter")
                self._check_table([str(p) for p in parts], scopes, database)
        elif kind == "ColumnsApplyTransformer":
            self._check_function(str(node.get("func_name", "")))
        elif kind == "Identifier" and node.get("children"):
            raise _denied("an Identifier query parameter (it could name any table)")
        for key, value in node.items():
            if key != "type":
                self._walk(value, scopes, database)

    def _check_table(
        self, parts: list[str], scopes: tuple[frozenset[str], ...], database: str
    ) -> None:
        if len(parts) == 1 and any(parts[0] in scope for scope in scopes):
            return  # a CTE of an enclosing query: its own subquery is checked where defined
        if len(parts) == 1:
            parts = [database, parts[0]]
        if len(parts) != 2 or not all(parts):
            raise _denied(f"table {'.'.join(parts)}")
        db, table = parts
        if db in self.databases or (db == "system" and table in SYSTEM_TABLES):
            return
        raise _denied(f"table {db}.{table}")

    def _check_function(self, name: str) -> None:
        if self._allowed_function(name):
            return
        raise ReaderRefusal(
            497, "ACCESS_DENIED", f"reader: Not enough privileges: function {name} is not allowed"
        )

    def _allowed_function(self, name: str) -> bool:
        if name in self._functions or name.lower() in self._functions:
            return True
        # An aggregate with combinators: strip them one at a time down to an allowed aggregate.
        for suffix in AGGREGATE_COMBINATORS:
            if name.endswith(suffix) and len(name) > len(suffix):
                base = name[: -len(suffix)]
                if self._functions.get(base) or self._functions.get(base.lower()):
                    return True
                if self._allowed_function(base) and self._is_aggregate_chain(base):
                    return True
        return False

    def _is_aggregate_chain(self, name: str) -> bool:
        if self._functions.get(name) or self._functions.get(name.lower()):
            return True
        return any(
            name.endswith(s) and self._is_aggregate_chain(name[: -len(s)])
            for s in AGGREGATE_COMBINATORS
            if len(name) > len(s)
        )


def _readonly(what: str) -> ReaderRefusal:
    return ReaderRefusal(
        164, "READONLY", f"reader: Cannot execute query in readonly mode: {what} is not allowed"
    )


def _denied(what: str) -> ReaderRefusal:
    return ReaderRefusal(497, "ACCESS_DENIED", f"reader: Not enough privileges to read {what}")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
