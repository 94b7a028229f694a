"""Just enough of ClickHouse's SQL lexer for the store server to route and police a request.

The server must know, without parsing SQL fully: where an ``INSERT ... FORMAT f`` statement ends
and its data begins (the data may be binary and is never lexed), the target and column list of
such an insert, whether the request holds more than one statement (chDB would run them all; a
ClickHouse server refuses), whether a statement is of a kind that only reads, and the output
format a ``FORMAT`` clause names. What a read-only user's statement reads is not decided here,
by words, but by ClickHouse's own parser (``reader_policy.py``). The lexer follows ClickHouse's
rules for the things that hide keywords: ``'strings'`` and ``"quoted"``/```quoted```
identifiers with backslash escapes and doubled quotes, ``$tag$heredocs$tag$``,
``--``/``#``/``//`` line comments and nested ``/* */``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

READ_KEYWORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN"})
"""Statements a read-only user may run; they are also the ones that produce a result."""

_HEREDOC = re.compile(r"\$[A-Za-z0-9_]*\$")
_WHITESPACE = " \t\n\r\f\v"


class SqlScanError(ValueError):
    """The text cannot be a single ClickHouse statement (unterminated string, two statements)."""


@dataclass(frozen=True)
class Token:
    kind: str
    """``word``, ``ident`` (quoted identifier), ``string``, ``number`` or ``punct``."""
    text: str
    start: int
    end: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""

    @property
    def name(self) -> str:
        """The identifier this token spells (quotes removed), or '' if it is not one."""
        if self.kind == "word":
            return self.text
        if self.kind == "ident":
            return re.sub(r"\\(.)|``|\"\"", lambda m: m.group(1) or m.group(0)[0], self.text[1:-1])
        return ""


@dataclass
class Statement:
    """What the server needs to know about one request's statement."""

    keyword: str = ""
    """The first keyword, upper case ('' for an empty request; SELECT for a leading '(')."""
    sql_end: int = 0
    """Where the statement text ends: before a trailing ';', or for ``INSERT ... FORMAT f``
    before the FORMAT clause (the server replaces the clause with a read of the data)."""
    data_start: int | None = None
    """For ``INSERT ... FORMAT f``: where its data begins (after blanks and one newline)."""
    insert_table: str = ""
    """For ``INSERT ... FORMAT f``: the target as written (``db.t``, quotes kept); '' if the
    target is anything else."""
    insert_columns: tuple[str, ...] = ()
    insert_format: str = ""
    insert_function: bool = False
    output_format: str = ""
    """The format named by a trailing ``FORMAT`` clause of a non-insert, if any."""
    file_io: bool = False
    """``INTO OUTFILE`` or ``FROM INFILE``: chDB would touch the server's file system."""
    inserts: bool = False
    """``INSERT INTO`` appears anywhere in the statement."""

    @property
    def produces_result(self) -> bool:
        return self.keyword in READ_KEYWORDS

    def read_only_refusal(self) -> str | None:
        """Why this statement is not of a reading kind, or None if it is (what it reads is for
        ``reader_policy.py`` to judge)."""
        if self.keyword not in READ_KEYWORDS or self.inserts:
            return f"{self.keyword or 'this statement'} is not a read query"
        return None


def tokens(text: str, start: int = 0) -> Iterator[Token]:
    """The tokens of ``text`` from ``start``, lazily (so a caller can stop before insert data)."""
    pos, end = start, len(text)
    while pos < end:
        char = text[pos]
        if char in _WHITESPACE:
            pos += 1
        elif text.startswith(("--", "//"), pos) or (text.startswith(("# ", "#!"), pos)):
            newline = text.find("\n", pos)
            pos = end if newline < 0 else newline + 1
        elif text.startswith("/*", pos):
            pos = _skip_block_comment(text, pos)
        elif char in "'\"`":
            close = _skip_quoted(text, pos, char)
            yield Token("string" if char == "'" else "ident", text[pos:close], pos, close)
            pos = close
        elif (
            char == "$"
            and (heredoc := _HEREDOC.match(text, pos))
            and (close := text.find(heredoc.group(), heredoc.end())) >= 0
        ):
            close += len(heredoc.group())
            yield Token("string", text[pos:close], pos, close)
            pos = close
        elif char.isalpha() or char == "_" or char >= "\x80":
            stop = pos + 1
            while stop < end and (
                text[stop].isalnum() or text[stop] in "_$" or text[stop] >= "\x80"
            ):
                stop += 1
            yield Token("word", text[pos:stop], pos, stop)
            pos = stop
        elif char.isdigit():
            stop = pos + 1
            while stop < end and (text[stop].isalnum() or text[stop] in "._"):
                stop += 1
            yield Token("number", text[pos:stop], pos, stop)
            pos = stop
        else:
            yield Token("punct", char, pos, pos + 1)
            pos += 1


def _skip_block_comment(text: str, pos: int) -> int:
    depth, pos = 1, pos + 2  # ClickHouse nests block comments
    while depth:
        opener, closer = text.find("/*", pos), text.find("*/", pos)
        if closer < 0:
            raise SqlScanError("Syntax error: unterminated multiline comment")
        if 0 <= opener < closer:
            depth, pos = depth + 1, opener + 2
        else:
            depth, pos = depth - 1, closer + 2
    return pos


def _skip_quoted(text: str, pos: int, quote: str) -> int:
    pos += 1
    while True:
        close = text.find(quote, pos)
        backslash = text.find("\\", pos, close if close >= 0 else len(text))
        if backslash >= 0:
            pos = backslash + 2
        elif close < 0:
            kind = "string literal" if quote == "'" else "quoted identifier"
            raise SqlScanError(f"Syntax error: unterminated {kind}")
        elif text.startswith(quote * 2, close):
            pos = close + 2
        else:
            return close + 1


def analyse(text: str) -> Statement:
    """Scan one request's text (query parameter, newline, body; decoded as latin-1 so that offsets
    are byte offsets). Raises SqlScanError for unterminated literals or a second statement."""
    stmt = Statement(sql_end=len(text))
    stream = tokens(text)
    previous: Token | None = None
    candidate = ""  # a FORMAT name that counts only if the statement ends or SETTINGS follows
    depth = 0
    for token in stream:
        if not stmt.keyword:
            stmt.keyword = token.upper or ("SELECT" if token.text == "(" else "?")
            if stmt.keyword == "INSERT":
                _analyse_insert(text, stream, stmt)
                if stmt.data_start is not None:
                    return stmt
                continue
        if token.text == ";":
            stmt.sql_end = token.start
            if next(stream, None) is not None:
                raise SqlScanError("Syntax error (Multi-statements are not allowed)")
            break
        if candidate and token.upper != "SETTINGS":
            stmt.output_format = ""
        candidate = ""
        if token.text in "([":
            depth += 1
        elif token.text in ")]":
            depth -= 1
        elif previous is not None and (previous.upper, token.upper) in _FILE_IO:
            stmt.file_io = True
        elif previous is not None and (previous.upper, token.upper) == ("INSERT", "INTO"):
            stmt.inserts = True  # ``WITH ... INSERT INTO``: a write behind a read keyword
        elif previous is not None and previous.upper == "FORMAT" and token.name and not depth:
            candidate = stmt.output_format = token.name
        previous = token
    return stmt


_FILE_IO = {("INTO", "OUTFILE"), ("FROM", "INFILE")}


def _analyse_insert(text: str, stream: Iterator[Token], stmt: Statement) -> None:
    """Read ``INSERT INTO [TABLE|FUNCTION] target [(cols)] [SETTINGS ...] FORMAT f``. An insert
    with VALUES or SELECT is left to the engine, which parses it as ordinary SQL; the caller goes
    on scanning it for a second statement."""
    target: list[str] = []
    columns: list[str] = []
    depth = 0
    previous: Token | None = None
    stage = "target"  # then "columns", then "tail" (SETTINGS ... FORMAT | VALUES | SELECT)
    odd_target = False  # a target that is not ``[db.]table``: refused rather than guessed at
    for token in stream:
        word = token.upper
        if token.text == ";":  # the head is run as it is: it must not hide a second statement
            raise SqlScanError("Syntax error (Multi-statements are not allowed)")
        if depth == 0 and word in {"VALUES", "SELECT", "WITH"}:
            return
        if token.text == "(":
            if stage == "target" and target and not stmt.insert_function:
                stage = "columns"
            depth += 1
        elif token.text == ")":
            depth -= 1
            if stage == "columns" and depth == 0:
                stage = "tail"
        elif stage == "target" and depth == 0:
            if word == "FUNCTION" and not target:
                stmt.insert_function = True
            elif word == "SETTINGS" or word == "FORMAT":
                stage = "tail"
            elif word not in {"INTO", "TABLE"} or target:
                odd_target |= not (token.name or token.text == ".")
                target.append(token.text)
        elif stage == "columns" and depth == 1 and token.name:
            columns.append(token.name)
        if depth == 0 and previous is not None and previous.upper == "FORMAT" and token.name:
            stmt.insert_format = token.name
            stmt.data_start = _data_start(text, token.end)
            stmt.sql_end = previous.start
            stmt.insert_table = "" if odd_target else "".join(target)
            stmt.insert_columns = tuple(columns)
            return
        previous = token


def _data_start(text: str, pos: int) -> int:
    # ClickHouse: data begins after the first newline following the format name, or after the
    # blanks if there is no newline.
    while pos < len(text) and text[pos] in " \t\f":
        pos += 1
    if text.startswith("\r", pos):
        pos += 1
    if text.startswith("\n", pos):
        pos += 1
    return pos
