# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lexing of PostgreSQL scripts: statement splitting and the checks that need it.

Pure code. :func:`split` cuts a script into statements the way psql does: semicolons inside
quotes (``'..'``, ``E'..'``, ``".."``), dollar quotes (``$$..$$``, ``$tag$..$tag$``), comments
(``--``, nested ``/* */``), parentheses (``CREATE RULE .. DO (..; ..)``) and SQL-standard function
bodies (``BEGIN ATOMIC .. END``) do not end a statement. Each :class:`Statement` knows its offset
and line in the script so server error positions can be mapped back to the file. The data psql
reads after ``COPY .. FROM STDIN`` (up to a ``\\.`` line) stays in that statement, which
:func:`meta_command_problems` refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

# Identifier characters as PostgreSQL's scanner sees them: A-Z, a-z, _ and any non-ASCII character
# to start, then also digits and $ (not in dollar-quote tags). Written as negated ASCII classes:
# a class with the range \u0080-\uffff takes ~30 ms to compile, paid by every module run.
_IDENT_START = r"[^\x00-\x40\x5b-\x5e\x60\x7b-\x7f]"
_IDENT_REST = r"[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"
_TAG_REST = r"[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"
_WORD = _IDENT_START + _IDENT_REST + "*"
_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<line_comment>--[^\n]*)"
    r"|(?P<block_comment>/\*)"
    r"|(?P<estring>[eE]')"
    r"|(?P<word>" + _WORD + r")"
    r"|(?P<string>')"
    r"|(?P<ident>\")"
    r"|(?P<dollar>\$(?:" + _IDENT_START + _TAG_REST + r"*)?\$)"
    r"|(?P<number>[0-9][0-9.eE_]*)"
    r"|(?P<semicolon>;)"
    r"|(?P<open>\()"
    r"|(?P<close>\))"
    r"|(?P<backslash>\\)"
    r"|(?P<other>.)",
    re.S,
)
_STRING_END = re.compile(r"(?:[^']|'')*'")
_ESTRING_END = re.compile(r"(?:[^'\\]|\\.|'')*'", re.S)
_IDENT_END = re.compile(r'(?:[^"]|"")*"')
_BLOCK = re.compile(r"/\*|\*/")

# Statements PostgreSQL refuses inside a transaction block (first words, upper case).
_NO_TRANSACTION_HEADS = (
    ("VACUUM",), ("CREATE", "DATABASE"), ("DROP", "DATABASE"), ("CREATE", "TABLESPACE"),
    ("DROP", "TABLESPACE"), ("ALTER", "SYSTEM"), ("REINDEX", "DATABASE"), ("REINDEX", "SYSTEM"),
    ("CREATE", "SUBSCRIPTION"), ("DROP", "SUBSCRIPTION"),
)
_TRANSACTION_CONTROL = {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT"}
# The line that ends the inline data of ``COPY .. FROM STDIN`` in a psql script.
_COPY_DATA_END = re.compile(r"^\\\.\r?$", re.M)


@dataclass
class Statement:
    """One statement of a script: its text, character offset and 1-based line in the script."""

    text: str
    offset: int
    line: int
    words: list[str] = field(default_factory=list)
    concurrently: bool = False
    meta_command: str | None = None
    terminated: bool = False  # ends with its own semicolon (not one in a trailing comment)
    copy_stdin: bool = False  # COPY .. FROM STDIN: its text runs on to the end of psql's inline data

    @property
    def head(self) -> str:
        """The statement's first words, for messages (``CREATE INDEX CONCURRENTLY``)."""
        return " ".join(self.text.split()[:4]).rstrip(";")


def line_of(text: str, offset: int) -> int:
    """1-based line number of character ``offset`` in ``text``."""
    return text.count("\n", 0, max(0, offset)) + 1


def _unterminated(what: str, script: str, offset: int, name: str) -> DbopsError:
    return DbopsError(f"parse {name}: unterminated {what} starting at line {line_of(script, offset)}")


def _skip_quoted(kind: str, script: str, pos: int, name: str, token: str) -> int:
    """Position after the quoted token that starts at ``pos`` (``token`` is the opening text)."""
    start = pos
    pos += len(token)
    if kind == "block_comment":
        depth = 1
        while depth:
            match = _BLOCK.search(script, pos)
            if match is None:
                raise _unterminated("comment /*", script, start, name)
            depth += 1 if match.group() == "/*" else -1
            pos = match.end()
        return pos
    if kind == "dollar":
        end = script.find(token, pos)
        if end < 0:
            raise _unterminated(f"dollar-quoted string {token}", script, start, name)
        return end + len(token)
    pattern, what = {
        "string": (_STRING_END, "quoted string '"),
        "estring": (_ESTRING_END, "quoted string E'"),
        "ident": (_IDENT_END, 'quoted identifier "'),
    }[kind]
    match = pattern.match(script, pos)
    if match is None:
        raise _unterminated(what, script, start, name)
    return match.end()


class _Builder:
    """Accumulates the tokens of the statement being read."""

    def __init__(self) -> None:
        self.start: int | None = None
        self.words: list[str] = []
        self.concurrently = False
        self.meta: str | None = None
        self.parens = 0
        self.atomic = 0
        self.last_word = ""  # the last word outside parentheses
        self.copy_stdin = False

    def routine_body(self) -> bool:
        words = [w for w in self.words[:6] if w not in ("OR", "REPLACE")]
        return len(words) >= 2 and words[0] == "CREATE" and words[1] in ("FUNCTION", "PROCEDURE")

    def word(self, upper: str) -> None:
        if len(self.words) < 8:
            self.words.append(upper)
        if upper == "CONCURRENTLY":
            self.concurrently = True
        if self.parens:
            return
        # begin is an unreserved keyword: a parameter, a RETURNS TABLE column (both in parentheses)
        # or a column used in the body may be named so. A body opens only with BEGIN ATOMIC outside
        # parentheses (psql looks at the paren depth too); a CASE in parentheses ends in them.
        body_start = upper == "ATOMIC" and self.last_word == "BEGIN" and self.routine_body()
        if body_start or (upper == "CASE" and self.atomic):
            self.atomic += 1
        elif upper == "END" and self.atomic:
            self.atomic -= 1
        elif upper == "STDIN" and self.last_word == "FROM" and self.words[0] == "COPY":
            self.copy_stdin = True
        self.last_word = upper


def split(script: str, name: str = "script") -> list[Statement]:
    """Split ``script`` into statements (comment-only parts are dropped)."""
    statements: list[Statement] = []
    current = _Builder()
    pos, size = 0, len(script)

    def finish(end: int, terminated: bool) -> None:
        nonlocal current
        text = script[current.start:end] if current.start is not None else ";"
        if text != ";":
            statements.append(Statement(text, current.start, line_of(script, current.start), current.words,
                                        current.concurrently, current.meta, terminated=terminated,
                                        copy_stdin=current.copy_stdin))
        current = _Builder()

    while pos < size:
        match = _TOKEN.match(script, pos)
        if match is None:  # pragma: no cover - the "other" alternative matches any character
            raise DbopsError(f"parse {name}: unexpected character at line {line_of(script, pos)}")
        kind = match.lastgroup or "other"
        token = match.group()
        if kind in ("space", "line_comment"):
            pos = match.end()
            continue
        if kind == "block_comment":
            pos = _skip_quoted(kind, script, pos, name, token)
            continue
        if current.start is None:
            current.start = pos
        if kind in ("string", "estring", "ident", "dollar"):
            pos = _skip_quoted(kind, script, pos, name, token)
            continue
        pos = match.end()
        if kind == "word":
            current.word(token.upper())
        elif kind == "open":
            current.parens += 1
        elif kind == "close":
            current.parens = max(0, current.parens - 1)
        elif kind == "backslash" and current.meta is None:
            meta = re.match(r"\\[A-Za-z!?]*", script[match.start():])
            current.meta = meta.group() if meta else "\\"
        elif kind == "semicolon" and current.parens == 0 and current.atomic == 0:
            if current.copy_stdin:
                # psql sends the lines after the COPY as its data, up to a line \. (or the end).
                data = script.find("\n", pos)
                end = _COPY_DATA_END.search(script, data + 1) if data >= 0 else None
                pos = end.end() if end is not None else size
            finish(pos, True)
    finish(size, False)
    return statements


def transaction_problems(statements: list[Statement]) -> list[tuple[Statement, str]]:
    """Statements that cannot run inside the migration's transaction, with the reason."""
    problems = []
    for statement in statements:
        words = statement.words
        concurrently = statement.concurrently and words and words[0] != "REFRESH"
        if concurrently or any(tuple(words[: len(head)]) == head for head in _NO_TRANSACTION_HEADS):
            problems.append((statement, f"{statement.head} cannot run inside a transaction"))
        elif words and words[0] in _TRANSACTION_CONTROL and not _rollback_to_savepoint(words):
            problems.append((statement, f"transaction control ({words[0]}) is not allowed: each migration"
                                        " already runs in its own transaction"))
        elif words[:2] == ["PREPARE", "TRANSACTION"] and "AS" not in words:
            # PREPARE TRANSACTION 'id' (not PREPARE transaction AS .., a statement named "transaction").
            problems.append((statement, "transaction control (PREPARE TRANSACTION) is not allowed: each"
                                        " migration already runs in its own transaction (prepared, its"
                                        " changes would wait uncommitted while its history row commits)"))
    return problems


def _rollback_to_savepoint(words: list[str]) -> bool:
    """``ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name``: undoes part of the transaction, ends nothing."""
    rest = words[2:] if words[1:2] in (["WORK"], ["TRANSACTION"]) else words[1:]
    return words[0] == "ROLLBACK" and rest[:1] == ["TO"]


def meta_command_problems(statements: list[Statement]) -> list[tuple[Statement, str]]:
    """What only psql understands: meta-commands (``\\i``, ``\\set``...) and ``COPY .. FROM STDIN``."""
    problems = []
    for statement in statements:
        if statement.copy_stdin:
            problems.append((statement, "COPY ... FROM STDIN is not supported (psql sends the lines after"
                                        " it, up to \\., as its data; a migration is SQL only): write the"
                                        " data as INSERT statements or COPY ... FROM a file on the database"
                                        " server"))
        elif statement.meta_command is not None:
            problems.append((statement, f"psql meta-command {statement.meta_command} is not supported"
                                        " (plain SQL only)"))
    return problems
