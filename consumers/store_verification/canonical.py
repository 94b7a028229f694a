"""Row values made comparable: the store's JSON text of a row and the row the materialiser
builds from an event (:mod:`consumers.store.rows`) come out as the same tuple when they agree."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any

from aigc_audit.consumers.store.rows import us_to_datetime
from aigc_audit.consumers.store.tables import Table


def canonical_select(table: Table) -> str:
    """A SELECT list that reads every column of ``table`` in a form :func:`canonical` matches."""
    exprs = []
    for name, ctype in table.columns:
        if name in table.binary_columns:
            inner = f"lower(hex(`{name}`))" if "FixedString" in ctype else f"base64Encode(`{name}`)"
        elif "UUID" in ctype:
            inner = f"toString(`{name}`)"
        else:
            inner = f"`{name}`"
        exprs.append(inner)
    return ", ".join(exprs)


_FIXED = re.compile(r"FixedString\((\d+)\)")


def canonical(table: Table, row: Mapping[str, Any]) -> tuple[Any, ...]:
    """A row as built by :mod:`consumers.store.rows`, in the form :func:`canonical_select` reads."""
    binary = table.binary_columns
    out = []
    for name, ctype in table.columns:
        value = row.get(name)
        if value is None:
            out.append(None if ctype.startswith("Nullable(") else _default(ctype))
        elif name in binary:
            raw = bytes(value)
            fixed = _FIXED.search(ctype)
            if fixed:
                out.append(raw.ljust(int(fixed.group(1)), b"\0").hex())
            else:
                out.append(base64.b64encode(raw).decode("ascii"))
        elif "DateTime64" in ctype:
            if isinstance(value, int):  # microseconds since the epoch, as rows carry them
                value = us_to_datetime(value)
            out.append(value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
        elif "Array" in ctype:
            out.append(tuple(value))
        elif "Bool" in ctype:
            out.append(bool(value))
        elif "Float" in ctype:
            out.append(float(value))
        elif "Int" in ctype:
            out.append(int(value))
        else:
            out.append(str(value))
    return tuple(out)


def _default(ctype: str) -> Any:
    if "Array" in ctype:
        return ()
    if "DateTime64" in ctype:
        return "1970-01-01 00:00:00.000000"
    if "Bool" in ctype:
        return False
    if "Int" in ctype or "Float" in ctype:
        return 0
    if "UUID" in ctype:
        return "00000000-0000-0000-0000-000000000000"
    return ""


def actual_row(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(tuple(v) if isinstance(v, list) else v for v in values)
