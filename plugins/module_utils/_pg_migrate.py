# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL side of pg_migrate: history table, locking, execution of the planned steps.

The engine-neutral rules (names, versions, checksums, the plan) live in ``_migrations``; this
file adds what is specific to PostgreSQL:

- the history table (created on first use, schema-qualified, one row per executed script);
- a session advisory lock taken on a connection of its own that stays idle outside any
  transaction (so ``CREATE INDEX CONCURRENTLY``, which waits for older snapshots, cannot deadlock
  on it); waiting is a bounded poll, and a timeout names the holder from ``pg_locks`` and
  ``pg_stat_activity``;
- one transaction per migration that includes its history row, sent as one message
  (``BEGIN; LOCK history; <script>; INSERT history row; COMMIT``) so a killed runner leaves either
  the whole migration with its row or nothing; a runner reads the history under a lock that
  conflicts with that ``LOCK``, so it waits for such an orphaned transaction to finish;
- ``-- dbops:transaction=off`` scripts run statement by statement in autocommit, bracketed by a
  history row that is written as failed first and marked successful at the end: a failure (or a
  kill) leaves a failed row that blocks later runs until ``repair``;
- placeholders, pre-checks, session timeouts and error messages that name the file, statement,
  line, column and the server's message: from the server's error position when it gives one, else
  by replaying the failed migration statement by statement in a transaction that is always rolled
  back (nothing else travels with a migration, so a successful one costs no extra work);
- verify scripts (``V<version>__<description>.verify.sql``): run in the migration's own transaction
  right before its history row (a failing verify rolls the migration back), or, for
  ``transaction=off`` migrations, in a read-only transaction after the last statement (a failing
  verify leaves the row failed); ``mode=verify`` re-runs the verify scripts of every applied version
  in read-only transactions that are rolled back, and reports each failure (drift);
- retries of a transactional migration that failed on ``lock_timeout`` (SQLSTATE 55P03), with a
  doubling delay, never for any other error.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import re
import socket
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils import _migrations as mig
from ansible_collections.dbops.datastores.plugins.module_utils import _pg_script
from ansible_collections.dbops.datastores.plugins.module_utils import _postgres as pg
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._migration_extensions import PG_EXTENSIONS

EXTENSIONS = PG_EXTENSIONS
DEFAULT_HISTORY_TABLE = "dbops_schema_history"
LOCK_CLASS_ID = 0x64626F70  # "dbop": first key of the two-key advisory lock
# "dbor": first key of the lock a runner's lock connection holds on its own backend pid, for as
# long as it lives (what every transactional message checks after its LOCK, see lock_guard).
RUN_LOCK_CLASS_ID = 0x64626F72
_DIRECTIVE = re.compile(r"^--\s*dbops:\s*([A-Za-z_]+)\s*=\s*(\S+)\s*$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.-]*)(?::([A-Za-z]+))?\}")
# A bare ${name} is inserted only when its value cannot change the statement's shape: letters,
# digits and "_ . : @ +" (host:port, user@host, 1.2.3+build), with single inner "-" (no quotes,
# spaces, parentheses, semicolons or comment starts: no call, no second statement, no comment).
_PLAIN_VALUE = re.compile(r"(?:[A-Za-z0-9_.:@+]+(?:-[A-Za-z0-9_.:@+]+)*)?")
PLACEHOLDER_KINDS = ("literal", "identifier", "raw")
SECRET_MASK = "********"
_DIRECTIVES = {"transaction": ("on", "off")}
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of lock_timeout expiring
MODES = ("migrate", "verify")
BATCH_MAX_VERSIONS = 50  # transactional migrations sent in one message, at most
BATCH_MAX_BYTES = 1 << 20  # and at most this much SQL per message (a single bigger one goes alone)
STARTED_SETTING = "dbops.migration_started"
_SINCE_STARTED = ("(extract(epoch FROM clock_timestamp()"
                  f" - current_setting('{STARTED_SETTING}')::timestamptz) * 1000)::int")


@dataclass(frozen=True)
class Settings:
    """What the task asks for (module options minus the connection)."""

    path: str
    target: str | None = None
    allow_downgrade: bool = False
    out_of_order: bool = False
    validate_checksums: bool = True
    baseline_version: str | None = None
    placeholders: dict[str, str] = field(default_factory=dict)  # a Placeholders from from_params
    history_schema: str = "public"
    history_table: str = DEFAULT_HISTORY_TABLE
    lock_timeout: float = 60.0
    statement_timeout: str | None = None
    session_lock_timeout: str | None = None
    repair: bool = False
    require_server_version: str | None = None
    require_extensions: tuple[str, ...] = ()
    session_role: str | None = None
    history_readers: tuple[str, ...] = ("pg_monitor",)
    mode: str = "migrate"
    lock_retries: int = 0
    lock_retry_delay: float = 5.0
    applied_detail: str = "compact"

    def __post_init__(self) -> None:
        if self.applied_detail not in mig.APPLIED_DETAILS:
            raise DbopsError(f"check option applied_detail: {self.applied_detail!r} is not one of"
                             f" {', '.join(mig.APPLIED_DETAILS)}")
        if self.mode not in MODES:
            raise DbopsError(f"check option mode: {self.mode!r} is not one of {', '.join(MODES)}")
        if self.lock_retries < 0:
            raise DbopsError(f"check option lock_retries: {self.lock_retries} is negative (0 means no retry)")
        if self.lock_retry_delay < 0:
            raise DbopsError(f"check option lock_retry_delay: {self.lock_retry_delay:g} is negative")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Settings:
        placeholders = Placeholders.from_params(params)
        return cls(
            path=params.get("path") or params.get("src") or "",
            target=params.get("target"),
            allow_downgrade=bool(params.get("allow_downgrade")),
            out_of_order=bool(params.get("out_of_order")),
            validate_checksums=params.get("validate_checksums", True) is not False,
            baseline_version=params.get("baseline_version"),
            placeholders=placeholders,
            history_schema=params.get("history_schema") or "public",
            history_table=params.get("history_table") or DEFAULT_HISTORY_TABLE,
            lock_timeout=float(params.get("lock_timeout") if params.get("lock_timeout") is not None else 60),
            statement_timeout=params.get("statement_timeout"),
            session_lock_timeout=params.get("session_lock_timeout"),
            repair=bool(params.get("repair")),
            require_server_version=params.get("require_server_version"),
            require_extensions=tuple(params.get("require_extensions") or ()),
            session_role=params.get("session_role") or None,
            history_readers=tuple(params.get("history_readers") if params.get("history_readers") is not None
                                  else ("pg_monitor",)),
            mode=params.get("mode") or "migrate",
            lock_retries=int(params.get("lock_retries") or 0),
            lock_retry_delay=float(5.0 if params.get("lock_retry_delay") is None
                                   else params["lock_retry_delay"]),
            applied_detail=params.get("applied_detail") or "compact",
        )

    def plan_options(self) -> mig.PlanOptions:
        return mig.PlanOptions(
            target=self.target, allow_downgrade=self.allow_downgrade, out_of_order=self.out_of_order,
            validate_checksums=self.validate_checksums, baseline_version=self.baseline_version,
            repair=self.repair,
        )

    @property
    def history_name(self) -> str:
        return f"{self.history_schema}.{self.history_table}"


# ---------------------------------------------------------------- pure helpers


def quote_ident(name: str) -> str:
    """Quote an identifier the way PostgreSQL does (always quoted, "" doubled)."""
    return '"' + name.replace('"', '""') + '"'


def history_ident(settings: Settings) -> str:
    return f"{quote_ident(settings.history_schema)}.{quote_ident(settings.history_table)}"


def history_ddl(settings: Settings) -> str:
    """The history table, created on first use."""
    table = history_ident(settings)
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (\n"
        "  installed_rank bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
        "  version text,\n"
        "  description text NOT NULL,\n"
        "  type text NOT NULL CHECK (type IN ('versioned', 'undo', 'repeatable', 'baseline')),\n"
        "  script text NOT NULL,\n"
        "  checksum text,\n"
        "  installed_by text NOT NULL DEFAULT session_user,\n"
        "  installed_on timestamptz NOT NULL DEFAULT now(),\n"
        "  execution_ms integer NOT NULL DEFAULT 0,\n"
        "  success boolean NOT NULL\n"
        ")"
    )


def lock_keys(database: str, settings: Settings) -> tuple[int, int]:
    """The two int4 keys of the advisory lock that guards one history table."""
    name = f"{database}/{settings.history_schema}.{settings.history_table}".encode()
    return LOCK_CLASS_ID, zlib.crc32(name) & 0x7FFFFFFF


def parse_directives(text: str, script: str) -> dict[str, str]:
    """``-- dbops:key=value`` lines at the top of a script (before the first SQL line)."""
    directives: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            break
        match = _DIRECTIVE.match(stripped)
        if match is None:
            if re.match(r"^--\s*dbops:", stripped):
                raise DbopsError(
                    f"parse {script}: malformed directive {stripped!r} (expected -- dbops:key=value)"
                )
            continue
        key, value = match.group(1).lower(), match.group(2).lower()
        if key not in _DIRECTIVES:
            known = ", ".join(_DIRECTIVES)
            raise DbopsError(f"parse {script}: unknown directive dbops:{key} (known: {known})")
        if value not in _DIRECTIVES[key]:
            allowed = " or ".join(_DIRECTIVES[key])
            raise DbopsError(f"parse {script}: dbops:{key}={value} is not valid (use {allowed})")
        directives[key] = value
    return directives


class Placeholders(dict):  # type: ignore[type-arg]
    """Placeholder values (name -> text), plus the names allowed raw and the names that are secret."""

    raw: frozenset[str] = frozenset()
    secret: frozenset[str] = frozenset()

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Placeholders:
        values = {**(params.get("placeholders") or {}), **(params.get("secret_placeholders") or {})}
        result = cls({str(k): "" if v is None else str(v) for k, v in values.items()})
        result.raw = frozenset(str(n) for n in params.get("raw_placeholders") or ())
        result.secret = frozenset(str(n) for n in params.get("secret_placeholders") or {})
        return result


def quote_literal(value: str) -> str:
    """A SQL string literal for ``value``, safe whatever standard_conforming_strings says."""
    if "\0" in value:
        raise DbopsError("quote a placeholder value: it contains a NUL character")
    body = value.replace("'", "''")
    if "\\" not in value:
        return "'" + body + "'"
    return "E'" + body.replace("\\", "\\\\") + "'"


def quote_identifier(value: str) -> str:
    if not value or "\0" in value:
        raise DbopsError("quote a placeholder value as an identifier: it is empty or holds a NUL character")
    return '"' + value.replace('"', '""') + '"'


def _render(match: re.Match[str], placeholders: dict[str, str], script: str, masked: bool) -> str:
    name, kind = match.group(1), match.group(2)
    value = placeholders[name]
    raw_allowed = name in getattr(placeholders, "raw", ())
    if masked and name in getattr(placeholders, "secret", ()):
        value = SECRET_MASK
        raw_allowed = True
    if kind == "literal":
        return quote_literal(value)
    if kind == "identifier":
        return quote_identifier(value)
    if kind not in (None, "raw"):
        raise DbopsError(f"substitute placeholders in {script}: ${{{name}:{kind}}} has an unknown kind "
                         f"(use {', '.join(PLACEHOLDER_KINDS)})")
    if raw_allowed or (kind is None and _PLAIN_VALUE.fullmatch(value)):
        return value
    if kind == "raw":
        raise DbopsError(f"substitute placeholders in {script}: ${{{name}:raw}} needs {name} listed in "
                         "raw_placeholders")
    raise DbopsError(
        f"substitute placeholders in {script}: the value of ${{{name}}} is not a plain word or number, so "
        f"it is not inserted as it is; write ${{{name}:literal}} for a quoted string, "
        f"${{{name}:identifier}} for a quoted name, or list {name} in raw_placeholders to insert it unquoted"
    )


def substitute(text: str, placeholders: dict[str, str], script: str, masked: bool = False) -> str:
    """Replace ``${name}``, ``${name:literal}``, ``${name:identifier}`` and ``${name:raw}``.

    A bare ``${name}`` takes a plain word or number only; ``:literal`` / ``:identifier`` quote the
    value; values of other shapes go in unquoted only for names listed in ``raw_placeholders``.
    With placeholders set, an unknown name is an error. ``masked`` renders secret values as
    ``********`` (for plans and diffs).
    """
    if not placeholders:
        return text
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(text)} - set(placeholders))
    if unknown:
        raise DbopsError(
            f"substitute placeholders in {script}: no value for " + ", ".join(f"${{{n}}}" for n in unknown)
            + f" (placeholders given: {', '.join(sorted(placeholders))})"
        )
    return _PLACEHOLDER.sub(lambda m: _render(m, placeholders, script, masked), text)


def secret_forms(params: dict[str, Any]) -> set[str]:
    """Every form a secret placeholder value takes in SQL (for the module's no_log values)."""
    return forms_of((params.get("secret_placeholders") or {}).values())


def forms_of(values: Iterable[Any]) -> set[str]:
    """The forms secret values take in SQL: as given, quoted as a literal or as an identifier."""
    forms: set[str] = set()
    for value in values:
        if value is None or str(value) == "":
            continue
        text = str(value)
        forms.update({text, text.replace("'", "''"), text.replace('"', '""'),
                      text.replace("'", "''").replace("\\", "\\\\")})
    return forms


def placeholder_secrets(placeholders: dict[str, str]) -> frozenset[str]:
    """The SQL forms of the secret placeholders' values (masked in the lines error messages show)."""
    names = [n for n in getattr(placeholders, "secret", ()) if n in placeholders]
    return frozenset(forms_of(placeholders[n] for n in names))


def required_version_num(text: str) -> int:
    """``server_version_num`` for a version written ``16``, ``15.4`` or ``9.6.3``."""
    try:
        parts = [int(p) for p in str(text).strip().split(".")]
    except ValueError:
        raise DbopsError(f"pre-check server version: {text!r} is not a version like 15 or 15.4") from None
    if not parts or len(parts) > 3:
        raise DbopsError(f"pre-check server version: {text!r} is not a version like 15 or 15.4")
    parts += [0] * (3 - len(parts))
    if parts[0] >= 10:
        return parts[0] * 10000 + parts[1]
    return parts[0] * 10000 + parts[1] * 100 + parts[2]


@dataclass
class VerifySql:
    """A verify script with the SQL it will run."""

    script: str
    sql: str
    statements: list[_pg_script.Statement]
    secrets: frozenset[str] = frozenset()  # placeholder_secrets: masked where a line is shown


@dataclass
class Script:
    """A planned step with the SQL it will run."""

    step: mig.Step
    sql: str
    transactional: bool
    statements: list[_pg_script.Statement]
    shown_sql: str | None = None  # the SQL with secret placeholder values masked
    verify: VerifySql | None = None
    secrets: frozenset[str] = frozenset()  # placeholder_secrets: masked where a line is shown

    @property
    def action_label(self) -> str:
        return {mig.ACTION_UNDO: "undo migration", mig.ACTION_REPEATABLE: "apply repeatable migration"}.get(
            self.step.action, "apply migration"
        )

    def to_dict(self, with_sql: bool) -> dict[str, Any]:
        data = self.step.to_dict()
        data["transaction"] = self.transactional
        if self.verify is not None:
            data["verify"] = self.verify.script
        if with_sql:
            data["sql"] = self.sql if self.shown_sql is None else self.shown_sql
            if self.verify is not None:
                data["verify_sql"] = self.verify.sql
        return data


def prepare_verify(migration: mig.Migration, placeholders: dict[str, str]) -> VerifySql:
    """Read, substitute and check a verify script: plain SQL that runs inside a transaction."""
    name = migration.script
    raw = migration.text()
    if parse_directives(raw, name):
        raise DbopsError(f"check {name}: a verify script takes no dbops: directive (it always runs in a"
                         " transaction)")
    sql = substitute(raw, placeholders, name)
    statements = _pg_script.split(sql, name)
    if not statements:
        raise DbopsError(f"check {name}: the verify script has no SQL statement")
    problems = _pg_script.meta_command_problems(statements) + _pg_script.transaction_problems(statements)
    if problems:
        details = "; ".join(f"line {stmt.line}: {reason}" for stmt, reason in problems)
        raise DbopsError(f"check {name}: {details}")
    return VerifySql(name, sql, statements, placeholder_secrets(placeholders))


def prepare(step: mig.Step, placeholders: dict[str, str], verify: mig.Migration | None = None) -> Script:
    """Read, substitute and check one step's script (``DbopsError`` before anything runs)."""
    if step.migration is None:
        raise DbopsError(f"prepare {step.action} step: it has no script")
    name = step.migration.script
    raw = step.migration.text()
    directives = parse_directives(raw, name)
    transactional = directives.get("transaction", "on") == "on"
    sql = substitute(raw, placeholders, name)
    statements = _pg_script.split(sql, name)
    problems = _pg_script.meta_command_problems(statements)
    if transactional:
        problems += [
            (stmt, f"{reason}: add '-- dbops:transaction=off' as the first line to run this script"
                   " statement by statement in autocommit")
            if "CONCURRENTLY" in reason or "cannot run inside" in reason else (stmt, reason)
            for stmt, reason in _pg_script.transaction_problems(statements)
        ]
    if problems:
        details = "; ".join(f"line {stmt.line}: {reason}" for stmt, reason in problems)
        raise DbopsError(f"check {name}: {details}")
    shown = substitute(raw, placeholders, name, masked=True) if getattr(placeholders, "secret", ()) else None
    return Script(step, sql, transactional, statements, shown_sql=shown,
                  verify=prepare_verify(verify, placeholders) if verify is not None else None,
                  secrets=placeholder_secrets(placeholders))


def prepare_all(steps: Sequence[mig.Step], placeholders: dict[str, str],
                migrations: mig.MigrationSet | None = None) -> list[Script]:
    """Prepare every step that runs a script (with its verify script); all problems together."""
    scripts: list[Script] = []
    problems: list[str] = []
    for step in steps:
        if step.migration is None:
            continue
        try:
            verify = mig.verify_script(migrations, step) if migrations is not None else None
            scripts.append(prepare(step, placeholders, verify))
        except DbopsError as exc:
            problems.append(exc.msg)
    if problems:
        raise DbopsError("check migrations: " + "; ".join(problems), problems=problems)
    return scripts


def batch_groups(sizes: Sequence[int | None], max_count: int = BATCH_MAX_VERSIONS,
                 max_bytes: int = BATCH_MAX_BYTES) -> list[list[int]]:
    """Split steps into messages: indexes of consecutive steps sent together, in order.

    ``sizes`` has the SQL size of each transactional migration, ``None`` for a step that must run
    alone (``transaction=off``, repair, baseline). A group holds at most ``max_count`` steps and
    ``max_bytes`` of SQL; a step bigger than ``max_bytes`` forms a group of its own.
    """
    groups: list[list[int]] = []
    current: list[int] = []
    current_bytes = 0
    for index, size in enumerate(sizes):
        if size is None:
            if current:
                groups.append(current)
            groups.append([index])
            current, current_bytes = [], 0
            continue
        if current and (len(current) >= max_count or current_bytes + size > max_bytes):
            groups.append(current)
            current, current_bytes = [], 0
        current.append(index)
        current_bytes += size
    if current:
        groups.append(current)
    return groups


def lock_guard(lock_pid: int) -> str:
    """The statement after each migration's ``LOCK``: note its start, check the lock is still ours.

    The server's statement and transaction timestamps are the whole message's receipt time, so the
    start goes into a setting for the history row's ``execution_ms``. A killed runner's server
    session goes on with the rest of its message; its lock connection is gone at once, though, and
    with it the lock that connection holds on its own pid (taken with the migration lock, see
    :meth:`Migrator.acquire_lock`). Trying that lock here fails while the lock connection lives; once
    it is gone the try succeeds and the division by zero stops the message before the next
    migration, so a new runner that took the migration lock meanwhile never races it. (A lookup in
    ``pg_locks`` did the same at 0.1-0.3 ms per migration: ``pg_lock_status()`` copies the whole lock
    table; a try on one lock costs microseconds.)
    """
    return (f"SELECT set_config('{STARTED_SETTING}', clock_timestamp()::text, true),"
            f" 1 / (NOT pg_try_advisory_xact_lock({RUN_LOCK_CLASS_ID}, {int(lock_pid)}))::int;\n")


def script_size(script: Script) -> int:
    """SQL bytes a migration adds to a message (its statements and its verify script's)."""
    size = sum(len(statement.text) for statement in script.statements)
    if script.verify is not None:
        size += sum(len(statement.text) for statement in script.verify.statements)
    return size


def server_message(exc: Any) -> str:
    """The server's error as psql shows it, without the LINE/caret echo of the query."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if not primary:
        return " ".join(str(exc).split()) or type(exc).__name__
    severity = getattr(diag, "severity", None) or "ERROR"
    parts = [f"{severity}:  {primary}"]
    for label, attr in (("DETAIL", "message_detail"), ("HINT", "message_hint"), ("CONTEXT", "context")):
        value = getattr(diag, attr, None)
        if value:
            parts.append(f"{label}:  {' '.join(value.split())}")
    code = getattr(exc, "pgcode", None)
    if code:
        parts.append(f"(SQLSTATE {code})")
    return " ".join(parts)


def error_position(exc: Any) -> int | None:
    """1-based character position of the error in the query the server received, if any."""
    diag = getattr(exc, "diag", None)
    value = getattr(diag, "statement_position", None) if diag is not None else None
    try:
        return int(value) if value else None
    except (TypeError, ValueError):
        return None


def locate(sql: str, offset: int, secrets: Iterable[str] = ()) -> str:
    """``line N, column M`` of character ``offset`` (0-based) in ``sql``, with the line's text.

    ``secrets`` (:func:`placeholder_secrets`) are masked before the line is shortened: the module's
    no_log masks whole values only, and a value cut in two would show its first part.
    """
    line = _pg_script.line_of(sql, offset)
    line_start = sql.rfind("\n", 0, offset) + 1
    line_end = sql.find("\n", offset)
    text = sql[line_start: line_end if line_end >= 0 else len(sql)].strip()
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, SECRET_MASK)
    if len(text) > 120:
        text = text[:117] + "..."
    return f"line {line}, column {offset - line_start + 1} ({text})"


@dataclass
class TransactionMessage:
    """One migration as a single simple-query message, with where each statement sits in it."""

    text: str
    prefix_end: int
    spans: list[tuple[int, int, _pg_script.Statement, int]]  # start, end, statement, number
    verify: VerifySql | None = None
    verify_spans: list[tuple[int, int, _pg_script.Statement, int]] = field(default_factory=list)

    def locate_failure(self, sql: str, position: int, secrets: Iterable[str] = ()) -> str:
        """Where the server's error position falls: " statement N at line L, column C (...)"."""
        if position <= self.prefix_end:
            return " while locking the history table"
        for start, end, statement, number in self.spans:
            if start < position <= end:
                where = locate(sql, statement.offset + position - 1 - start, secrets)
                return f" statement {number} at {where}"
        for start, end, statement, number in self.verify_spans:
            if self.verify is not None and start < position <= end:
                return verify_failure(self.verify, number, statement.offset + position - 1 - start)
        return " while recording it in the history"


def verify_failure(verify: VerifySql, number: int, offset: int) -> str:
    """The location part of a message for a verify statement that failed in a migration's transaction."""
    return (f": verify script {verify.script} failed at statement {number},"
            f" {locate(verify.sql, offset, verify.secrets)}")


def transaction_message(table: str, statements: Sequence[_pg_script.Statement], insert: str,
                        verify: VerifySql | None = None, guard: str = "") -> TransactionMessage:
    """``BEGIN; LOCK history; statement 1; ...; [verify statements;] INSERT; COMMIT`` as one string.

    Nothing else is sent: an error the server gives a position for is mapped back to its
    statement through the spans; one without (timeouts, constraint violations, RAISE) is located
    afterwards by :meth:`Migrator.replay_to_locate`. ``guard`` (:func:`lock_guard`) runs right
    after the ``LOCK``.
    """
    prefix = f"BEGIN;\nLOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE;\n{guard}"
    parts = [prefix]
    size = len(prefix)

    def add(items: Sequence[_pg_script.Statement]) -> list[tuple[int, int, _pg_script.Statement, int]]:
        nonlocal size
        spans = []
        for number, statement in enumerate(items, 1):
            # The last statement may end without its semicolon, or in a comment (`-- done;`).
            body = statement.text if statement.terminated else statement.text + "\n;"
            spans.append((size, size + len(statement.text), statement, number))
            parts.extend((body, "\n"))
            size += len(body) + 1
        return spans

    spans = add(statements)
    # The verify script's statements come after the migration's, before its history row.
    verify_spans = add(verify.statements if verify is not None else ())
    parts += [insert, ";\nCOMMIT;"]
    return TransactionMessage("".join(parts), len(prefix), spans, verify, verify_spans)


@dataclass
class BatchOutcome:
    """What one batched message did: each committed migration's execution_ms, the error that stopped it."""

    messages: list[TransactionMessage] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)  # where each migration's message starts
    execution_ms: list[int] = field(default_factory=list)
    failure: Any = None


# ---------------------------------------------------------------- the run


def application_name(role: str) -> str:
    """Identifies this runner in pg_stat_activity (host and process), at most 63 bytes."""
    return f"dbops pg_migrate {role} {socket.gethostname()[:24]}:{os.getpid()}"[:63]


def open_connection(params: dict[str, Any], role: str) -> Any:
    """A UTF-8, autocommit psycopg2 connection named for pg_stat_activity."""
    kwargs = pg.conn_kwargs(params)
    kwargs["application_name"] = application_name(role)
    conn = pg.connect_with(kwargs)
    conn.autocommit = True
    conn.set_client_encoding("UTF8")
    return conn


class Migrator:
    """One pg_migrate run against one database."""

    def __init__(self, params: dict[str, Any], settings: Settings) -> None:
        self.params = params
        self.settings = settings
        self.conn: Any = None
        self.lock_conn: Any = None
        self.database: str = ""
        self.server: dict[str, Any] = {}
        self.table_exists = False
        self.retry_pending = False  # a lock_timeout failure will be retried: no need to locate it

    # ---- connections, pre-checks, settings

    def connect(self) -> None:
        self.conn = open_connection(self.params, "migrate")
        if self.settings.session_role:
            # Objects the migrations create (and the history table) belong to this role.
            try:
                with self.conn.cursor() as cur:
                    cur.execute(f"SET ROLE {quote_ident(self.settings.session_role)}")
            except pg.psycopg2.Error as exc:
                role = self.settings.session_role
                raise DbopsError(f"set session role {role}: {server_message(exc)}") from exc
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT current_database(), pg_is_in_recovery(), current_setting('server_version'),"
                " current_setting('server_version_num')::int"
            )
            database, in_recovery, version, num = cur.fetchone()
        if in_recovery:
            raise DbopsError(
                f"migrate database {database}: the server is a read-only standby (in recovery); "
                "run migrations on the primary, the standbys replay them"
            )
        self.database = database
        self.server = {"server_version": version, "server_version_num": num}
        for setting, value in (("statement_timeout", self.settings.statement_timeout),
                               ("lock_timeout", self.settings.session_lock_timeout)):
            if value in (None, ""):
                continue
            try:
                with self.conn.cursor() as cur:
                    cur.execute(f"SET {setting} = %s", (str(value),))
            except pg.psycopg2.Error as exc:
                raise DbopsError(f"set {setting} to {value!r}: {server_message(exc)}") from exc

    def close(self) -> None:
        for conn in (self.conn, self.lock_conn):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self.conn = self.lock_conn = None

    def pre_checks(self) -> None:
        """require_server_version / require_extensions, before any change."""
        wanted = self.settings.require_server_version
        if wanted and self.server["server_version_num"] < required_version_num(wanted):
            raise DbopsError(
                f"pre-check server version of {self.database}: PostgreSQL"
                f" {self.server['server_version']} is older than the required {wanted}"
            )
        names = list(self.settings.require_extensions)
        if names:
            with self.conn.cursor() as cur:
                cur.execute("SELECT name FROM pg_available_extensions WHERE name = ANY(%s)", (names,))
                available = {row[0] for row in cur.fetchall()}
            missing = [n for n in names if n not in available]
            if missing:
                raise DbopsError(
                    f"pre-check extensions of {self.database}: not available on the server: "
                    + ", ".join(missing) + " (install the packages that provide them)"
                )

    # ---- lock

    def acquire_lock(self) -> float:
        """Take the advisory lock on its own idle connection; return seconds waited."""
        self.lock_conn = open_connection(self.params, "lock")
        keys = lock_keys(self.database, self.settings)
        start = time.monotonic()
        deadline = start + max(0.0, self.settings.lock_timeout)
        delay = 0.02
        while True:
            with self.lock_conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s, %s)", keys)
                if cur.fetchone()[0]:
                    waited = time.monotonic() - start
                    # The lock every transactional message checks (lock_guard): held by this connection only.
                    cur.execute("SELECT pg_try_advisory_lock(%s, pg_backend_pid())", (RUN_LOCK_CLASS_ID,))
                    if not cur.fetchone()[0]:
                        raise DbopsError(
                            f"lock migrations of {self.database}: advisory lock ({RUN_LOCK_CLASS_ID},"
                            f" {self.lock_conn.get_backend_pid()}) on this runner's own backend pid is held"
                            " by another session (something else uses that advisory lock key)")
                    return waited
            now = time.monotonic()
            if now >= deadline:
                raise DbopsError(
                    f"lock migrations of {self.database} ({self.settings.history_name}): still held after"
                    f" {self.settings.lock_timeout:g}s by {self.describe_holder(keys)}",
                    lock_holder=self.holder(keys),
                )
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, 0.25)

    def lock_held(self) -> bool:
        """Whether the lock connection still answers (it holds the advisory lock while it lives)."""
        try:
            with self.lock_conn.cursor() as cur:
                cur.execute("SELECT 1")
            return True
        except (pg.psycopg2.Error, AttributeError):
            return False

    def lost_lock(self, script: str) -> DbopsError:
        """The error for a run whose lock connection is gone: another runner may hold the lock now."""
        return DbopsError(
            f"apply migration {script}: the connection holding the migration lock of {self.database} was"
            " lost, so the run stopped before this migration (rolled back; the ones before it are applied"
            " and recorded)", script=script)

    def require_lock(self, script: str) -> None:
        """Stop before a step that no batched message guards (a ``transaction=off`` migration, repair,
        baseline) when the lock connection is gone."""
        if not self.lock_held():
            raise self.lost_lock(script)

    def connection_lost(self) -> bool:
        """Whether the migration connection itself is gone (the server or the network dropped it)."""
        return bool(getattr(self.conn, "closed", 0))

    def holder(self, keys: tuple[int, int]) -> dict[str, Any] | None:
        with self.lock_conn.cursor() as cur:
            cur.execute(
                "SELECT a.pid, a.usename, a.application_name, host(a.client_addr), a.backend_start::text,"
                " (SELECT m.query FROM pg_stat_activity m WHERE m.application_name ="
                "   replace(a.application_name, ' lock ', ' migrate ') AND m.pid <> a.pid"
                "   AND m.state <> 'idle' LIMIT 1)"
                " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.database ="
                "   (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid AND l.objsubid = 2",
                keys,
            )
            row = cur.fetchone()
        if row is None:
            return None
        return {"pid": row[0], "user": row[1], "application_name": row[2], "client_addr": row[3],
                "backend_start": row[4], "running": row[5]}

    def describe_holder(self, keys: tuple[int, int]) -> str:
        info = self.holder(keys)
        if info is None:
            return "another session (it has just released it)"
        text = (f"pid {info['pid']} (user {info['user']}, application {info['application_name']!r},"
                f" client {info['client_addr'] or 'local socket'}, connected since {info['backend_start']})")
        if info["running"]:
            running = " ".join(info["running"].split())
            text += f", which is running: {running[:200]}"
        return text

    # ---- history

    def read_history(self, locked: bool) -> list[mig.HistoryRow]:
        table = history_ident(self.settings)
        with self.conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
            self.table_exists = bool(cur.fetchone()[0])
            if not self.table_exists:
                return []
            select = (f"SELECT installed_rank, type, version, description, script, checksum, success,"
                      f" installed_by, installed_on::text, execution_ms FROM {table} ORDER BY installed_rank")
            try:
                if locked:
                    # Waits for a transaction of a killed runner that is still finishing its migration.
                    wait_ms = max(1, int(self.settings.lock_timeout * 1000))
                    cur.execute(f"BEGIN; SET LOCAL lock_timeout = {wait_ms};"
                                f" LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE; {select}")
                    rows = cur.fetchall()
                    cur.execute("COMMIT")
                else:
                    cur.execute(select)
                    rows = cur.fetchall()
            except pg.psycopg2.Error as exc:
                self._rollback()
                raise DbopsError(
                    f"read history table {self.settings.history_name}: {server_message(exc)}"
                ) from exc
        return [mig.HistoryRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9]) for r in rows]

    def ensure_history_table(self) -> bool:
        """Create the schema and table when missing; return whether anything was created."""
        if self.table_exists:
            return False
        try:
            with self.conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.settings.history_schema,))
                statements = [] if cur.fetchone() else [
                    f"CREATE SCHEMA IF NOT EXISTS {quote_ident(self.settings.history_schema)}"
                ]
                statements.append(history_ddl(self.settings))
                # Monitoring (pg_health_info) reads the schema version, nothing else.
                statements += [f"GRANT SELECT ON {history_ident(self.settings)} TO {quote_ident(reader)}"
                               for reader in self.settings.history_readers]
                cur.execute("BEGIN; " + "; ".join(statements) + "; COMMIT")
        except pg.psycopg2.Error as exc:
            self._rollback()
            raise DbopsError(
                f"create history table {self.settings.history_name}: {server_message(exc)}"
            ) from exc
        self.table_exists = True
        return True

    def _rollback(self) -> None:
        try:
            if self.conn is not None and not self.conn.closed:
                with self.conn.cursor() as cur:
                    cur.execute("ROLLBACK")
        except pg.psycopg2.Error:
            pass

    def _insert_sql(self, cur: Any, step: mig.Step, kind: str, success: bool, execution_ms: str) -> str:
        table = history_ident(self.settings)
        version = step.version.text if step.version is not None else None
        row = (version, step.description, kind, step.script, step.checksum)
        values = cur.mogrify("%s, %s, %s, %s, %s", row)
        return (f"INSERT INTO {table} (version, description, type, script, checksum, execution_ms, success)"
                f" VALUES ({values.decode()}, {execution_ms}, {'true' if success else 'false'})")

    # ---- steps

    def run_bookkeeping(self, step: mig.Step) -> dict[str, Any]:
        """repair and baseline steps: history changes only."""
        table = history_ident(self.settings)
        started = time.monotonic()
        self.require_lock(step.script)
        with self.conn.cursor() as cur:
            try:
                if step.action == mig.ACTION_REPAIR:
                    ranks = [row.rank for row in step.rows]
                    cur.execute(f"DELETE FROM {table} WHERE success = false AND installed_rank = ANY(%s)",
                                (ranks,))
                else:
                    cur.execute(self._insert_sql(cur, step, mig.KIND_BASELINE, True, "0"))
            except pg.psycopg2.Error as exc:
                raise DbopsError(
                    f"{step.action} history {self.settings.history_name}: {server_message(exc)}"
                ) from exc
        result = step.to_dict()
        result["execution_ms"] = int((time.monotonic() - started) * 1000)
        return result

    def run_script(self, script: Script) -> dict[str, Any]:
        kind = script_kind(script.step)
        started = time.monotonic()
        if script.transactional:
            self._run_transactional(script, kind, started)
        else:
            self._run_autocommit(script, kind, started)
        result = script.to_dict(with_sql=False)
        result["execution_ms"] = int((time.monotonic() - started) * 1000)
        return result

    def _run_transactional(self, script: Script, kind: str, started: float) -> None:
        """The whole migration, its history row and the COMMIT in one message (one round trip).

        A killed runner leaves either all of it or nothing. It checks the migration lock after the
        ``LOCK`` (:func:`lock_guard`), as batched messages do: a runner whose lock connection is gone
        stops here. An error the server gives a position for is mapped back to its statement and
        line directly; one without a position (timeouts, constraint violations, RAISE) is located by
        :meth:`replay_to_locate`.
        """
        table = history_ident(self.settings)
        elapsed = "(extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000)::int"
        with self.conn.cursor() as cur:
            insert = self._insert_sql(cur, script.step, kind, True, elapsed)
            message = transaction_message(table, script.statements, insert, verify=script.verify,
                                          guard=lock_guard(self.lock_conn.get_backend_pid()))
            try:
                cur.execute(message.text)
            except pg.psycopg2.Error as exc:
                if self.connection_lost():
                    raise DbopsError(
                        f"{script.action_label} {script.step.script}: the connection to the server was lost"
                        f" while it ran ({server_message(exc)}); whether it committed is unknown: run again,"
                        " the history says", script=script.step.script) from exc
                self._rollback()
                if not self.lock_held():
                    raise self.lost_lock(script.step.script) from exc
                position = error_position(exc)
                code = getattr(exc, "pgcode", None)
                if position is not None:
                    where = message.locate_failure(script.sql, position, script.secrets)
                elif self.retry_pending and code == LOCK_NOT_AVAILABLE:
                    where = ""  # retried: the message of this attempt is not shown
                else:
                    where = self.replay_to_locate(script, code)
                raise DbopsError(
                    f"{script.action_label} {script.step.script}{where}: {server_message(exc)}"
                    " (rolled back: the database is as before this migration)",
                    script=script.step.script, sqlstate=code,
                ) from exc

    def replay_to_locate(self, script: Script, sqlstate: str | None) -> str:
        """Find the statement behind an error without a position; the database is left as it was.

        The migration (and its verify script) is re-run statement by statement inside a
        transaction that is always rolled back, until a statement fails with the same SQLSTATE.
        Only what a rollback cannot undo survives: sequence values taken by ``nextval``, session
        advisory locks, effects outside the database (``dblink``, ``COPY ... TO PROGRAM``). Returns
        the location text for the message, or a note saying the error did not happen again.
        """
        not_located = (" (statement not located: no statement failed the same way when the migration"
                       " was replayed in a rolled-back transaction)")
        table = history_ident(self.settings)
        items = [(statement, number, None) for number, statement in enumerate(script.statements, 1)]
        if script.verify is not None:
            items += [(statement, number, script.verify)
                      for number, statement in enumerate(script.verify.statements, 1)]
        where = not_located
        try:
            with self.conn.cursor() as cur:
                cur.execute("BEGIN")
                try:
                    cur.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
                except pg.psycopg2.Error as exc:
                    return " while locking the history table" if exc.pgcode == sqlstate else not_located
                for statement, number, verify in items:
                    try:
                        cur.execute(statement.text)
                    except pg.psycopg2.Error as exc:
                        if getattr(exc, "pgcode", None) != sqlstate:
                            break
                        position = error_position(exc)
                        offset = statement.offset + (position - 1 if position else 0)
                        where = (verify_failure(verify, number, offset) if verify is not None
                                 else f" statement {number} at {locate(script.sql, offset, script.secrets)}")
                        break
        except pg.psycopg2.Error:
            where = not_located  # the connection itself failed: report the error as it came
        finally:
            self._rollback()
        return where

    def _run_autocommit(self, script: Script, kind: str, started: float) -> None:
        table = history_ident(self.settings)
        self.require_lock(script.step.script)
        with self.conn.cursor() as cur:
            try:
                insert = self._insert_sql(cur, script.step, kind, False, "0")
                cur.execute(insert + " RETURNING installed_rank")
                rank = cur.fetchone()[0]
            except pg.psycopg2.Error as exc:
                raise DbopsError(f"record {script.step.script} in {self.settings.history_name}:"
                                 f" {server_message(exc)}") from exc
            for number, statement in enumerate(script.statements, 1):
                try:
                    cur.execute(statement.text)
                except pg.psycopg2.Error as exc:
                    position = error_position(exc)
                    offset = statement.offset + (position - 1 if position else 0)
                    elapsed_ms = int((time.monotonic() - started) * 1000)
                    with contextlib.suppress(pg.psycopg2.Error):
                        cur.execute(f"UPDATE {table} SET execution_ms = %s WHERE installed_rank = %s",
                                    (elapsed_ms, rank))
                    done = (f"statements 1-{number - 1} stay applied" if number > 1
                            else "no statement was applied")
                    where = locate(script.sql, offset, script.secrets)
                    raise DbopsError(
                        f"{script.action_label} {script.step.script} (transaction=off) statement {number} at"
                        f" {where}: {server_message(exc)} ({done}; recorded as failed in"
                        f" {self.settings.history_name}: fix the database, then run with repair=true)",
                        script=script.step.script, sqlstate=getattr(exc, "pgcode", None),
                    ) from exc
            if script.verify is not None:
                try:
                    self.run_verify(script.verify)
                except DbopsError as exc:
                    raise DbopsError(
                        f"{script.action_label} {script.step.script} (transaction=off): {exc.msg} (every"
                        f" statement stays applied; recorded as failed in {self.settings.history_name}:"
                        " fix the database, then run with repair=true)",
                        script=script.step.script, verify=script.verify.script,
                    ) from exc
            elapsed_ms = int((time.monotonic() - started) * 1000)
            try:
                cur.execute(f"UPDATE {table} SET success = true, execution_ms = %s WHERE installed_rank = %s",
                            (elapsed_ms, rank))
            except pg.psycopg2.Error as exc:
                raise DbopsError(
                    f"record {script.step.script} as applied in {self.settings.history_name}:"
                    f" {server_message(exc)} (every statement was applied; its history row stays marked"
                    " failed: check the database, then run with repair=true)", script=script.step.script,
                ) from exc

    def run_verify(self, verify: VerifySql) -> None:
        """Run a verify script in a read-only transaction that is rolled back; ``DbopsError`` on failure."""
        with self.conn.cursor() as cur:
            try:
                cur.execute("BEGIN READ ONLY")
            except pg.psycopg2.Error as exc:
                raise DbopsError(f"verify script {verify.script}: cannot start its read-only transaction:"
                                 f" {server_message(exc)}", verify=verify.script) from exc
            try:
                for number, statement in enumerate(verify.statements, 1):
                    try:
                        cur.execute(statement.text)
                    except pg.psycopg2.Error as exc:
                        position = error_position(exc)
                        offset = statement.offset + (position - 1 if position else 0)
                        raise DbopsError(
                            f"verify script {verify.script} failed at statement {number},"
                            f" {locate(verify.sql, offset, verify.secrets)}: {server_message(exc)}",
                            verify=verify.script, sqlstate=getattr(exc, "pgcode", None),
                        ) from exc
            finally:
                self._rollback()

    def run_batch(self, scripts: Sequence[Script], applied: list[dict[str, Any]],
                  sleep: Any = time.sleep) -> None:
        """Transactional migrations, several per message, each still its own transaction.

        Each migration is its own ``BEGIN; LOCK history; <script>; [verify;] INSERT history;
        COMMIT``; the messages of up to ``BATCH_MAX_VERSIONS`` migrations travel as one simple
        query, so an error stops the rest of the message while the COMMITs before it stand. The
        results of the committed migrations are appended to ``applied``. After an error, the
        committed ones are counted in the history (rows past the rank read before the message);
        the failing one is located as in :meth:`_run_transactional`, or retried alone on
        ``lock_timeout`` when retries are allowed, and the rest is sent again.
        """
        rest = list(scripts)
        while rest:
            if len(rest) == 1:
                applied.append(self.run_script_retrying(rest[0], sleep))
                return
            batch = self._send_batch(rest)
            for script, ms in zip(rest, batch.execution_ms):
                result = script.to_dict(with_sql=False)
                result["execution_ms"] = ms
                applied.append(result)
            if batch.failure is None:
                return
            done = len(batch.execution_ms)
            script, failure = rest[done], batch.failure
            code = getattr(failure, "pgcode", None)
            if code == LOCK_NOT_AVAILABLE and self.settings.lock_retries > 0:
                sleep(retry_delay(self.settings.lock_retry_delay, 0))
                applied.append(self.run_script_retrying(script, sleep, first_attempt=1))
                rest = rest[done + 1:]
                continue
            if not self.lock_held():
                raise self.lost_lock(script.step.script) from failure
            position = error_position(failure)
            at = done if position is None else bisect.bisect_left(batch.offsets, position) - 1
            if position is not None and at >= done:
                # A syntax error stops the whole message before anything runs (the server parses
                # it all first): the migrations before the one at fault go again, without it.
                script = rest[at]
                where = batch.messages[at].locate_failure(script.sql, position - batch.offsets[at],
                                                          script.secrets)
            else:
                where = self.replay_to_locate(script, code)
            error = DbopsError(
                f"{script.action_label} {script.step.script}{where}: {server_message(failure)}"
                " (rolled back: the database is as before this migration)",
                script=script.step.script, sqlstate=code,
            )
            if at > done:
                self.run_batch(rest[done:at], applied, sleep)
            raise error from failure

    def _send_batch(self, scripts: Sequence[Script]) -> BatchOutcome:
        """Send the migrations as one message; what committed, and the error that stopped it."""
        table = history_ident(self.settings)
        outcome = BatchOutcome()
        with self.conn.cursor() as cur:
            try:
                cur.execute(f"SELECT coalesce(max(installed_rank), 0) FROM {table}")
                rank_before = int(cur.fetchone()[0])
            except pg.psycopg2.Error as exc:
                raise DbopsError(f"read history table {self.settings.history_name}:"
                                 f" {server_message(exc)}") from exc
            guard = lock_guard(self.lock_conn.get_backend_pid())
            parts: list[str] = []
            size = 0
            for script in scripts:
                insert = self._insert_sql(cur, script.step, script_kind(script.step), True, _SINCE_STARTED)
                message = transaction_message(table, script.statements, insert, verify=script.verify,
                                              guard=guard)
                outcome.offsets.append(size)
                outcome.messages.append(message)
                parts += [message.text, "\n"]
                size += len(message.text) + 1
            committed = (f"SELECT execution_ms FROM {table} WHERE installed_rank > {rank_before}"
                         " ORDER BY installed_rank")
            try:
                cur.execute("".join(parts) + committed)
            except pg.psycopg2.Error as exc:
                outcome.failure = exc
                self._rollback()
                try:
                    cur.execute(committed)
                except pg.psycopg2.Error as again:
                    raise DbopsError(
                        f"apply migrations {scripts[0].step.script} to {scripts[-1].step.script}:"
                        f" {server_message(exc)} (then reading which of them were committed failed:"
                        f" {server_message(again)})", sqlstate=getattr(exc, "pgcode", None),
                    ) from exc
            outcome.execution_ms = [int(row[0]) for row in cur.fetchall()][:len(scripts)]
        if outcome.failure is not None and len(outcome.execution_ms) >= len(scripts):
            # Every migration committed; only the closing SELECT failed.
            outcome.failure = None
        return outcome

    def run_script_retrying(self, script: Script, sleep: Any = time.sleep,
                            first_attempt: int = 0) -> dict[str, Any]:
        """run_script, retried after a doubling delay while a transactional one fails on lock_timeout.

        ``first_attempt`` counts the attempts already made (a batch that failed on this migration).
        """
        attempt = first_attempt
        while True:
            self.retry_pending = attempt < self.settings.lock_retries
            try:
                result = self.run_script(script)
            except DbopsError as exc:
                if not (script.transactional and exc.details.get("sqlstate") == LOCK_NOT_AVAILABLE
                        and attempt < self.settings.lock_retries):
                    if attempt:
                        exc.msg += f" (after {attempt} retr{'y' if attempt == 1 else 'ies'} on lock_timeout)"
                    raise
                sleep(retry_delay(self.settings.lock_retry_delay, attempt))
                attempt += 1
                continue
            if attempt:
                result["lock_retries"] = attempt
            return result


def script_kind(step: mig.Step) -> str:
    """The history row's type for a step that runs a script."""
    return {mig.ACTION_UNDO: mig.KIND_UNDO, mig.ACTION_REPEATABLE: mig.KIND_REPEATABLE}.get(
        step.action, mig.KIND_VERSIONED
    )


def run_steps(migrator: Migrator, steps: Sequence[mig.Step], scripts: dict[int, Script],
              applied: list[dict[str, Any]]) -> None:
    """Run the planned steps in order: transactional migrations batched, the others alone."""
    sizes = [script_size(scripts[id(step)]) if id(step) in scripts and scripts[id(step)].transactional
             else None for step in steps]
    for group in batch_groups(sizes, BATCH_MAX_VERSIONS, BATCH_MAX_BYTES):
        step = steps[group[0]]
        script = scripts.get(id(step))
        if script is None:
            applied.append(migrator.run_bookkeeping(step))
        elif len(group) == 1:
            applied.append(migrator.run_script_retrying(script))
        else:
            migrator.run_batch([scripts[id(steps[i])] for i in group], applied)


def retry_delay(base: float, attempt: int) -> float:
    """Seconds to wait before retry ``attempt + 1``: ``base`` doubled per retry, at most 10 x base."""
    return min(base * (2 ** attempt), base * 10)


def verify_applied(migrator: Migrator, migrations: mig.MigrationSet,
                   history: Sequence[mig.HistoryRow], placeholders: dict[str, str]) -> dict[str, Any]:
    """mode=verify: run the verify script of every applied version; changes nothing."""
    pairs = mig.applied_verifications(migrations, history)
    prepared = [(row, prepare_verify(script, placeholders)) for row, script in pairs]
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    for row, verify in prepared:
        entry: dict[str, Any] = {"version": row.version, "script": row.script, "verify": verify.script}
        try:
            migrator.run_verify(verify)
            entry["ok"] = True
        except DbopsError as exc:
            entry.update(ok=False, error=exc.msg)
            failures.append(exc.msg)
        results.append(entry)
    state = mig.history_state(history)
    result = {
        "changed": False,
        "version_before": _text(state.current()),
        "version": _text(state.current()),
        "verified": results,
        "pending": [],
        "applied": [],
        "unverified": [state.applied[v].script for v in sorted(state.applied) if v not in migrations.verify],
    }
    if failures:
        raise DbopsError(
            f"verify migrations of {migrator.database}: {len(failures)} of {len(results)} verify scripts"
            " failed (the live schema has drifted from the migrations): " + "; ".join(failures),
            **result,
        )
    return result


def diff(version_before: str | None, version_after: str | None,
         steps: Sequence[dict[str, Any]], omitted: int = 0) -> dict[str, str]:
    """Ansible diff: the version before and after, and the scripts in between."""
    lines = [f"{s['action']} {s['script']}" for s in steps]
    if omitted:
        half = len(lines) // 2
        lines[half:half] = [f"... {omitted} more steps (applied_detail=full lists them)"]
    return {
        "before_header": "schema version",
        "after_header": "schema version",
        "before": f"version: {version_before or '(none)'}\n",
        "after": f"version: {version_after or '(none)'}\n" + "".join(f"# {line}\n" for line in lines),
    }


def _text(version: mig.Version | None) -> str | None:
    return str(version) if version is not None else None


def migrate(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Run pg_migrate; return the module result (``DbopsError`` on failure, with partial results)."""
    settings = Settings.from_params(params)
    shipped = mig.shipped_contents(params.get("files"), params.get("src"))
    mig.shipped_summary(params)  # the result's invocation carries a count, not the files again
    migrations = mig.discover(settings.path, EXTENSIONS, contents=shipped)
    migrator = Migrator(params, settings)
    applied: list[dict[str, Any]] = []
    try:
        migrator.connect()
        migrator.pre_checks()
        if settings.mode == "verify":
            return {**verify_applied(migrator, migrations, migrator.read_history(locked=False),
                                     settings.placeholders),
                    "history_table": settings.history_name, "database": migrator.database,
                    "server_version": migrator.server["server_version"], "lock_wait_s": 0.0}
        # Plan from the committed history first: a run with nothing to do needs no lock and no
        # second connection. With something to do, take the lock and plan again under it.
        lock_wait = 0.0
        plan = mig.plan(migrations, migrator.read_history(locked=False), settings.plan_options())
        if plan.steps and not check_mode:
            lock_wait = migrator.acquire_lock()
            plan = mig.plan(migrations, migrator.read_history(locked=True), settings.plan_options())
        scripts = {id(s.step): s for s in prepare_all(plan.steps, settings.placeholders, migrations)}
        result: dict[str, Any] = {
            "changed": plan.changed,
            "version_before": _text(plan.version_before),
            "version": _text(plan.version_after),
            "pending": plan.pending,
            "history_table": settings.history_name,
            "database": migrator.database,
            "server_version": migrator.server["server_version"],
            "lock_wait_s": round(lock_wait, 3),
        }
        if check_mode or not plan.steps:
            result["plan"] = [scripts[id(s)].to_dict(with_sql=True) if id(s) in scripts else s.to_dict()
                              for s in plan.steps]
            result.update(mig.applied_result([]))
            return result
        migrator.ensure_history_table()
        run_steps(migrator, plan.steps, scripts, applied)
        result.update(mig.applied_result(applied, settings.applied_detail))
        return result
    except DbopsError as exc:
        for key, value in mig.applied_result(applied, settings.applied_detail).items():
            exc.details.setdefault(key, value)
        if applied:
            exc.details["changed"] = True
            try:
                state = mig.history_state(migrator.read_history(locked=False))
                exc.details["version"] = _text(state.current())
            except (DbopsError, pg.psycopg2.Error):
                pass
        raise
    finally:
        migrator.close()
