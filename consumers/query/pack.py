"""The pack of named inspection queries: ``queries/*.sql``, parsed, typed and bound safely.

Each file ``queries/<name>.sql`` starts with a header of ``--`` comment lines::

    -- title: Complaints past their deadline
    -- articles: Art. 15; Draft 13
    -- description: One or two sentences on what it answers.
    -- param as_of: DateTime64(6) = now     (the time to judge lateness at)
    -- param service_id: String             (required)

followed by the SQL. The header ends at the first line that is not a ``--`` comment. Keys are
``title``, ``articles`` (``;``-separated), ``description`` (continued on following ``--`` lines
indented by at least two spaces) and any number of ``param`` lines. A param line is
``NAME: TYPE [= DEFAULT] [(doc)]``; TYPE is one of :data:`PARAM_TYPES`; DEFAULT is a bare token
or a single-quoted string (``''`` is the empty string), and ``now`` means the current UTC time
(for ``DateTime64(6)`` and ``Date``). A param without a default is required.

The SQL refers to parameters only through ClickHouse placeholders ``{name:Type}``; parameter
values are never formatted into the SQL text, but passed to ``store.query(sql, params)``. A
``DateTime64(6)`` parameter must be written ``{name:DateTime64(6, 'UTC')}`` in the SQL: a bare
``DateTime64(6)`` placeholder would be read in the server's session time zone, which need not be
UTC. Every placeholder must be declared in the header with a matching type, and every declared
parameter must be used; :func:`parse_query` refuses a query that breaks either rule.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib.resources import files

from aigc_audit.consumers.query.errors import QueryError
from aigc_audit.consumers.store.base import QueryResult, Store

PACKAGE = "aigc_audit.queries"
"""The package whose ``*.sql`` files form the pack (shipped in the wheel as package data)."""

PARAM_TYPES: tuple[str, ...] = (
    "String",
    "UInt32",
    "UInt64",
    "Int64",
    "Float64",
    "Date",
    "DateTime64(6)",
    "Bool",
)
"""The parameter types a header may declare."""

PLACEHOLDER_TYPES: dict[str, str] = {
    **{t: t for t in PARAM_TYPES},
    "DateTime64(6)": "DateTime64(6, 'UTC')",
}
"""The ClickHouse type a placeholder of each declared parameter type must carry in the SQL."""

NOW = "now"
"""The default that means the current UTC time (or today's UTC date for a Date)."""

_INT_RANGES: dict[str, tuple[int, int]] = {
    "UInt32": (0, 2**32 - 1),
    "UInt64": (0, 2**64 - 1),
    "Int64": (-(2**63), 2**63 - 1),
}
# ClickHouse's ranges: Date 1970-01-01..2149-06-06, DateTime64 1900-01-01..2299-12-31.
_DATE_RANGE = (date(1970, 1, 1), date(2149, 6, 6))
_DATETIME_RANGE = (datetime(1900, 1, 1, tzinfo=UTC), datetime(2299, 12, 31, 23, 59, 59, tzinfo=UTC))

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_KEY_LINE = re.compile(r"--\s?(?P<key>[a-z]+):\s*(?P<value>.*?)\s*")
_PARAM_LINE = re.compile(r"--\s?param\s+(?P<rest>.*?)\s*")
_PARAM = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*:\s*(?P<type>DateTime64\(6\)|[A-Za-z0-9]+)"
    r"(?:\s*=\s*(?P<default>'[^']*'|[^\s(']+))?"
    r"(?:\s*\((?P<doc>.*)\))?\s*"
)
_PLACEHOLDER = re.compile(r"\{\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*:\s*(?P<type>[^{}]*?)\s*\}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)


class QueryPackError(QueryError):
    """A query file is malformed, or a query cannot be found or bound."""


class QueryParamError(QueryPackError):
    """A parameter given to a query is unknown, missing or ill-typed; the message is one line."""


class UnknownQueryError(QueryPackError):
    """No query of that name is in the pack; the message suggests close names."""


@dataclass(frozen=True)
class QueryParam:
    """One declared parameter: ``default`` is the header's text (None: required)."""

    name: str
    type: str
    default: str | None
    doc: str

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class NamedQuery:
    """A named inspection query: its header and its SQL (without the header, no trailing ``;``)."""

    name: str
    title: str
    articles: tuple[str, ...]
    description: str
    params: tuple[QueryParam, ...]
    sql: str

    def param(self, name: str) -> QueryParam | None:
        """The declared parameter of that name, if any."""
        return next((p for p in self.params if p.name == name), None)


def placeholders(sql: str) -> dict[str, set[str]]:
    """Every ``{name:Type}`` placeholder in ``sql``: name -> the types it is written with."""
    found: dict[str, set[str]] = {}
    for match in _PLACEHOLDER.finditer(sql):
        found.setdefault(match["name"], set()).add(_normalise_type(match["type"]))
    return found


def _normalise_type(text: str) -> str:
    return re.sub(r"\s*,\s*", ", ", re.sub(r"\s+", " ", text.strip()))


def parse_query(name: str, text: str) -> NamedQuery:
    """Parse one query file's text; raise QueryPackError naming the query and the fault.

    Checks: the name is snake_case; title, articles and description are present once each; every
    param line is well-formed, its type known and its default valid for the type; param names are
    unique; the SQL is not empty; its placeholders and the declared params match one to one, with
    the types of :data:`PLACEHOLDER_TYPES`.
    """

    def fail(why: str) -> QueryPackError:
        return QueryPackError(f"query {name!r}: {why}")

    if not _NAME.fullmatch(name):
        raise fail("a query name must be snake_case (a-z, 0-9, _)")
    lines = text.splitlines()
    fields: dict[str, str] = {}
    params: list[QueryParam] = []
    last_key: str | None = None
    index = 0
    while index < len(lines) and lines[index].lstrip().startswith("--"):
        line = lines[index].strip()
        index += 1
        continuation = re.fullmatch(r"--\s{2,}(\S.*?)\s*", line)
        if continuation and last_key == "description":
            fields["description"] += " " + continuation.group(1)
            continue
        param_line = _PARAM_LINE.fullmatch(line)
        if param_line is not None:
            last_key = "param"
            params.append(_parse_param(param_line["rest"], fail))
            continue
        key_line = _KEY_LINE.fullmatch(line)
        if key_line is None:
            raise fail(f"malformed header line {index}: {line!r}")
        key, value = key_line["key"], key_line["value"]
        last_key = key
        if key in ("title", "articles", "description"):
            if key in fields:
                raise fail(f"header key {key!r} given twice")
            if not value:
                raise fail(f"header key {key!r} is empty")
            fields[key] = value
        else:
            raise fail(f"unknown header key {key!r} on line {index}")
    for key in ("title", "articles", "description"):
        if key not in fields:
            raise fail(f"header misses {key!r}")
    articles = tuple(a.strip() for a in fields["articles"].split(";"))
    if not all(articles):
        raise fail("articles must be a ';'-separated list without empty items")
    names = [p.name for p in params]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise fail(f"params declared twice: {', '.join(duplicates)}")

    sql = "\n".join(lines[index:]).strip()
    while sql.endswith(";"):
        sql = sql[:-1].rstrip()
    if not sql:
        raise fail("no SQL after the header")
    used = placeholders(sql)
    declared = {p.name: p for p in params}
    undeclared = sorted(set(used) - set(declared))
    if undeclared:
        raise fail(f"placeholders not declared as params: {', '.join(undeclared)}")
    unused = sorted(set(declared) - set(used))
    if unused:
        raise fail(f"params not used in the SQL: {', '.join(unused)}")
    for pname, types in sorted(used.items()):
        want = PLACEHOLDER_TYPES[declared[pname].type]
        wrong = sorted(types - {want})
        if wrong:
            raise fail(
                f"placeholder {pname!r} is written as {wrong[0]!r}; a {declared[pname].type} "
                f"param must be written {{{pname}:{want}}}"
            )
    return NamedQuery(
        name=name,
        title=fields["title"],
        articles=articles,
        description=fields["description"],
        params=tuple(params),
        sql=sql,
    )


def _parse_param(text: str, fail: Callable[[str], QueryPackError]) -> QueryParam:
    match = _PARAM.fullmatch(text)
    if match is None:
        raise fail(f"malformed param line {text!r} (want NAME: TYPE [= DEFAULT] [(doc)])")
    name, ptype, default = match["name"], match["type"], match["default"]
    if not _NAME.fullmatch(name):
        raise fail(f"param name {name!r} must be snake_case")
    if ptype not in PARAM_TYPES:
        raise fail(f"param {name!r} has unknown type {ptype!r} (one of {', '.join(PARAM_TYPES)})")
    if default is not None and default.startswith("'"):
        default = default[1:-1]
    param = QueryParam(name, ptype, default, (match["doc"] or "").strip())
    if default is not None:
        try:
            _convert(param, default, datetime.now(UTC))
        except QueryParamError as exc:
            raise fail(f"bad default: {exc}") from None
    return param


def load_query_pack() -> dict[str, NamedQuery]:
    """Every query of the pack by name, read from the ``queries`` package's ``*.sql`` files.

    Reads through ``importlib.resources`` so that an installed (non-editable) wheel works. Raises
    QueryPackError if any file is malformed. Returns a new dict on every call.
    """
    pack: dict[str, NamedQuery] = {}
    for entry in sorted(files(PACKAGE).iterdir(), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith(".sql"):
            name = entry.name[: -len(".sql")]
            pack[name] = parse_query(name, entry.read_text(encoding="utf-8"))
    return pack


def get_query(name: str, pack: Mapping[str, NamedQuery] | None = None) -> NamedQuery:
    """The query of that name from ``pack`` (default: the installed pack).

    Raises UnknownQueryError whose message suggests close names, or lists every name.
    """
    pack = load_query_pack() if pack is None else pack
    if name in pack:
        return pack[name]
    close = difflib.get_close_matches(name, list(pack), n=3, cutoff=0.5)
    if close:
        hint = f"did you mean {', '.join(close)}?"
    else:
        hint = f"known queries: {', '.join(sorted(pack)) or '(none)'}"
    raise UnknownQueryError(f"unknown query {name!r}; {hint}")


def parse_param_args(items: Iterable[str]) -> dict[str, str]:
    """Command-line ``--param NAME=VALUE`` items as a dict (the value may contain ``=``);
    QueryParamError for an item without a name or an ``=``."""
    given: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise QueryParamError(f"--param {item!r} is not NAME=VALUE")
        given[key.strip()] = value
    return given


def bind_params(query: NamedQuery, given: Mapping[str, object]) -> dict[str, object]:
    """The typed values of every declared param of ``query``, ready for ``store.query``.

    ``given`` maps names to command-line strings (already-typed values are accepted and checked
    too, so binding twice gives the same result). Conversions: String as is; UInt32, UInt64 and
    Int64 as base-10 integers within range; Float64 as a finite float; Date as YYYY-MM-DD (or
    ``now``: today in UTC); DateTime64(6) as ISO 8601 (a date, or a date and time with optional
    seconds and fraction, ``T`` or space, optional ``Z`` or ``±HH:MM``; no offset means UTC; or
    ``now``), returned as an aware UTC datetime; Bool as true/false/1/0. Absent params take their
    default (``now`` is the current UTC time, the same instant for every param of one call).

    Raises QueryParamError with one line for an unknown name (listing the known ones), missing
    required params, or an ill-typed value (naming the param, the value and the expected type).
    """
    known = [p.name for p in query.params]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise QueryParamError(
            f"unknown parameter {unknown[0]!r} for query {query.name!r}; "
            f"known: {', '.join(known) or '(none)'}"
        )
    missing = [p for p in query.params if p.name not in given and p.default is None]
    if missing:
        listed = ", ".join(f"{p.name} ({p.type})" for p in missing)
        word = "parameter" if len(missing) == 1 else "parameters"
        raise QueryParamError(f"query {query.name!r} needs {word}: {listed}")
    now = datetime.now(UTC)
    bound: dict[str, object] = {}
    for param in query.params:
        value = given.get(param.name, param.default)
        bound[param.name] = _convert(param, value, now)
    return bound


def run_query(
    store: Store, query: NamedQuery, params: Mapping[str, object] | None = None
) -> QueryResult:
    """Bind ``params`` (see :func:`bind_params`) and run ``query`` on ``store``.

    The values travel as ClickHouse query parameters, never inside the SQL text.
    """
    return store.query(query.sql, bind_params(query, params or {}))


def _convert(param: QueryParam, value: object, now: datetime) -> object:
    """One value for ``param``: parse a string, or check an already-typed value."""
    ptype = param.type

    def bad(expected: str) -> QueryParamError:
        return QueryParamError(
            f"parameter {param.name!r}: {value!r} is not a valid {ptype} (expected {expected})"
        )

    if ptype == "String":
        if not isinstance(value, str):
            raise bad("text")
        return value
    if ptype in _INT_RANGES:
        low, high = _INT_RANGES[ptype]
        expected = f"an integer from {low} to {high}"
        if isinstance(value, str):
            if not re.fullmatch(r"\s*[+-]?\d+\s*", value):
                raise bad(expected)
            number = int(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            raise bad(expected)
        if not low <= number <= high:
            raise bad(expected)
        return number
    if ptype == "Float64":
        expected = "a finite decimal number such as 0.95"
        if isinstance(value, str):
            try:
                real = float(value)
            except ValueError:
                raise bad(expected) from None
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            real = float(value)
        else:
            raise bad(expected)
        if not math.isfinite(real):
            raise bad(expected)
        return real
    if ptype == "Bool":
        if isinstance(value, bool):
            return value
        text = value.strip().lower() if isinstance(value, str) else None
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise bad("true, false, 1 or 0")
    if ptype == "Date":
        expected = f"a date YYYY-MM-DD from {_DATE_RANGE[0]} to {_DATE_RANGE[1]}, or now"
        if isinstance(value, str):
            text = value.strip()
            if text.lower() == NOW:
                return now.date()
            if not _DATE.fullmatch(text):
                raise bad(expected)
            try:
                day = date.fromisoformat(text)
            except ValueError:
                raise bad(expected) from None
        elif isinstance(value, date) and not isinstance(value, datetime):
            day = value
        else:
            raise bad(expected)
        if not _DATE_RANGE[0] <= day <= _DATE_RANGE[1]:
            raise bad(expected)
        return day
    if ptype == "DateTime64(6)":
        expected = (
            "an ISO 8601 time such as 2026-11-01, 2026-11-01T08:00:00, 2026-11-01T08:00:00Z or "
            "2026-11-01T16:00:00+08:00, from 1900 to 2299, or now"
        )
        if isinstance(value, str):
            text = value.strip()
            if text.lower() == NOW:
                return now
            if not _DATETIME.fullmatch(text):
                raise bad(expected)
            try:
                moment = datetime.fromisoformat(text.upper())
            except ValueError:
                raise bad(expected) from None
        elif isinstance(value, datetime):
            moment = value
        else:
            raise bad(expected)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        if not _DATETIME_RANGE[0] <= moment <= _DATETIME_RANGE[1]:
            raise bad(expected)
        return moment
    raise bad(f"one of {', '.join(PARAM_TYPES)}")  # pragma: no cover - types are checked on parse
