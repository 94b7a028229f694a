"""What every store shares about results and errors, so callers cannot tell the stores apart.

Both stores read query results as ClickHouse's ``JSONCompact`` output with 64-bit integers
unquoted (``output_format_json_quote_64bit_integers = 0``) and parse them here: numbers come back
as JSON numbers, ``DateTime64(6)`` as ``'YYYY-MM-DD HH:MM:SS.ffffff'``, UUIDs and dates as
strings, ``Nullable`` as ``None``, arrays as lists, ``Bool`` as ``true``/``false``. Errors of
either store become one line that starts with ClickHouse's ``Code: N. DB::Exception: ...``.
"""

from __future__ import annotations

import json
import re

from aigc_audit.consumers.store.base import QueryResult

_VERSION_TRAILER = re.compile(r"\s*\(version [^()]*(?:\([^()]*\))?[^()]*\)\s*$")


def parse_json_compact(raw: str | bytes) -> QueryResult:
    """The QueryResult of a ``JSONCompact`` document; an empty body (a statement) has no rows.

    Bytes are decoded as UTF-8 with replacement: String columns holding raw bytes are read with
    ``hex()`` or ``base64Encode()`` by callers, never through this text.
    """
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    if not text.strip():
        return QueryResult((), (), [])
    doc = json.loads(text)
    meta = doc["meta"]
    return QueryResult(
        tuple(m["name"] for m in meta),
        tuple(m["type"] for m in meta),
        [tuple(r) for r in doc["data"]],
    )


def one_line(message: str) -> str:
    """The first non-empty line of an engine or server error, without the version trailer.

    ClickHouse servers end an exception with ``(version 24.8.1.1 (official build))``; chDB does
    not, and one store must not word an error differently from the other.
    """
    for line in message.strip().splitlines():
        if line.strip():
            return _VERSION_TRAILER.sub("", line.strip())
    return message.strip()
