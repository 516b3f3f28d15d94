# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL backups through pg_dump and restores through pg_restore/psql.

The password reaches the client tools through a 0600 passfile in a private temp directory
(``PGPASSFILE``), never through argv. pg_dump runs on a snapshot exported by our own connection,
so the row counts recorded in the manifest are exactly the rows in the dump.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_catalog as catalog
from ansible_collections.dbops.datastores.plugins.module_utils import _postgres
from ansible_collections.dbops.datastores.plugins.module_utils._errors import (
    DatabaseMissingError,
    DbopsError,
    WrongNodeError,
)

FORMATS = ("custom", "directory", "plain")
# Which node of a replicated cluster takes a job's backup (the job option ``from``).
FROM_CHOICES = ("primary", "standby", "prefer_standby", "any")
PAYLOAD = {"custom": "database.dump", "directory": "database.dir", "plain": "database.sql"}
GLOBALS_FILE = "globals.sql"
_ERROR_LINE = re.compile(r"^(pg_dump|pg_dumpall|pg_restore|psql): (error|fatal|FATAL|ERROR)[: ]", re.M)
_WARNING_LINE = re.compile(r"^(pg_dump|pg_dumpall|pg_restore): warning: (.*)$", re.M)

_TABLES_SQL = """
SELECT n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND c.relpersistence <> 't'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
 ORDER BY 1, 2
"""

_USER_OBJECTS_SQL = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
"""


# --------------------------------------------------------------------------- client tool plumbing

def _escape_passfile(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


@contextlib.contextmanager
def tool_env(params: dict[str, Any], database: str) -> Iterator[dict[str, str]]:
    """Environment for pg_dump/pg_restore/psql; the password goes into a 0600 passfile."""
    kwargs = _postgres.conn_kwargs(params, database)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({
        "PGUSER": str(kwargs["user"]),
        "PGPORT": str(kwargs["port"]),
        "PGDATABASE": database,
        "PGSSLMODE": str(kwargs["sslmode"]),
        "PGCONNECT_TIMEOUT": str(kwargs["connect_timeout"]),
        "PGAPPNAME": "dbops.datastores",
    })
    if kwargs.get("host"):
        env["PGHOST"] = str(kwargs["host"])
    for key, var in (("sslrootcert", "PGSSLROOTCERT"), ("sslcert", "PGSSLCERT"), ("sslkey", "PGSSLKEY")):
        if kwargs.get(key):
            env[var] = str(kwargs[key])
    private = tempfile.mkdtemp(prefix="dbops-pg-")
    try:
        os.chmod(private, 0o700)
        passfile = os.path.join(private, "pgpass")
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            if kwargs.get("password") is not None:
                handle.write(f"*:*:*:*:{_escape_passfile(str(kwargs['password']))}\n")
        env["PGPASSFILE"] = passfile
        env["DBOPS_PRIVATE_TMP"] = private
        yield env
    finally:
        shutil.rmtree(private, ignore_errors=True)


_TOOL_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")
# Set since pg_dump/pg_restore 17 at the top of every dump and restore; servers before 17 reject it.
_NEW_TIMEOUT_SET = "SET transaction_timeout = 0;"
_NEW_TIMEOUT_SINCE = 17
BIN_DIRS_ENV = "DBOPS_PG_BIN_DIRS"


def parse_tool_major(version_text: str | None) -> int | None:
    """Major of ``pg_dump (PostgreSQL) 18.1`` style output (None when it does not say)."""
    match = _TOOL_VERSION.search(version_text or "")
    return int(match.group(1)) if match else None


def choose_tool(name: str, candidates: list[tuple[str, int]], minimum: int | None,
                prefer: int | None) -> tuple[str, int]:
    """Pick ``(path, major)`` among found tools (in search order): the one of major ``prefer`` when
    it is at least ``minimum``, else the newest one of at least ``minimum``. Never an older one.

    ``prefer`` is the server's major (like Debian's pg_wrapper: the matching tools write archives
    every same-or-newer pg_restore reads and no settings the server lacks); ``minimum`` is the
    server's major for pg_dump and the dump tool's major for pg_restore.
    """
    usable = [(path, major) for path, major in candidates if minimum is None or major >= minimum]
    if not usable:
        found = ", ".join(f"{major} ({path})" for path, major in candidates) or "none"
        raise DbopsError(f"find {name}: no {name} of PostgreSQL {minimum} or newer (found: {found}); "
                         f"install the client tools of {minimum} or newer and set bin_dir or {BIN_DIRS_ENV}")
    matching = [tool for tool in usable if tool[1] == prefer]
    if matching:
        return matching[0]
    best = max(tool[1] for tool in usable)
    return next(tool for tool in usable if tool[1] == best)


def tool_dirs(bin_dir: str | None, env: dict[str, str] | None = None) -> list[str]:
    """Where client tools are looked for, in order: ``bin_dir`` alone when set; else the
    directories in DBOPS_PG_BIN_DIRS, Debian's /usr/lib/postgresql/<major>/bin and PGDG's
    /usr/pgsql-<major>/bin (newest first), then PATH."""
    if bin_dir:
        return [bin_dir]
    env = os.environ if env is None else env
    dirs = [d for d in env.get(BIN_DIRS_ENV, "").split(os.pathsep) if d]
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"):
        found = glob.glob(pattern)
        found.sort(key=lambda d: int(m.group(0)) if (m := re.search(r"\d+", d)) else 0, reverse=True)
        dirs += found
    dirs += [d for d in env.get("PATH", "").split(os.pathsep) if d]
    return list(dict.fromkeys(dirs))


def find_tools(name: str, bin_dir: str | None) -> list[tuple[str, int]]:
    """Every executable ``name`` in tool_dirs() with its major, in search order."""
    found: list[tuple[str, int]] = []
    seen: set[str] = set()
    for directory in tool_dirs(bin_dir):
        path = os.path.join(directory, name)
        real = os.path.realpath(path)
        if real in seen or not (os.path.isfile(path) and os.access(path, os.X_OK)):
            continue
        seen.add(real)
        major = parse_tool_major(tool_version(path))
        if major is not None:
            found.append((path, major))
    if not found:
        where = bin_dir or f"{BIN_DIRS_ENV}, /usr/lib/postgresql/*/bin or PATH"
        raise DbopsError(f"find {name}: not found in {where} (install the PostgreSQL client or set bin_dir)")
    return found


def find_tool(name: str, bin_dir: str | None, server_major: int | None) -> str:
    """The ``name`` tool for a server of ``server_major`` (never older than the server)."""
    return choose_tool(name, find_tools(name, bin_dir), server_major, server_major)[0]


def restore_tool(manifest: dict[str, Any], bin_dir: str | None, server_major: int | None) -> tuple[str, int]:
    """The pg_restore (or psql for plain dumps) for this backup and target server.

    pg_restore must be at least as new as the pg_dump that wrote the archive (an older one stops at
    "unsupported version in file header"); refused here, before anything is changed."""
    fmt = manifest.get("format")
    name = "psql" if fmt == "plain" else "pg_restore"
    dump_major = dump_tool_major(manifest)
    minimum = None if fmt == "plain" else dump_major
    try:
        return choose_tool(name, find_tools(name, bin_dir), minimum, server_major)
    except DbopsError as exc:
        raise DbopsError(f"restore backup {manifest.get('id')}: it was written by pg_dump {dump_major}, "
                         f"which only pg_restore {dump_major} or newer reads ({exc.msg})") from exc


def dump_tool_major(manifest: dict[str, Any]) -> int | None:
    """Major of the pg_dump that wrote a backup (``tool.major``, or parsed from ``tool.version``)."""
    tool = manifest.get("tool") or {}
    major = tool.get("major")
    return int(major) if isinstance(major, int) else parse_tool_major(tool.get("version"))


def needs_timeout_filter(tool_major: int | None, server_major: int | None) -> bool:
    """True when tools of 17+ would send ``SET transaction_timeout`` to a server before 17."""
    return bool(tool_major and server_major and tool_major >= _NEW_TIMEOUT_SINCE > server_major)


def filter_header(lines: Iterator[bytes]) -> Iterator[bytes]:
    """Drop ``SET transaction_timeout = 0;`` from the SET prelude of a pg_dump/pg_restore script.

    Only the prelude (blank lines, comments, SET and set_config lines before the first other
    statement) is looked at; the rest, including any table data, passes unchanged."""
    in_prelude = True
    for line in lines:
        if in_prelude:
            text = line.strip()
            if text == _NEW_TIMEOUT_SET.encode():
                continue
            if text and not text.startswith((b"--", b"SET ", b"SELECT pg_catalog.set_config", b"\\")):
                in_prelude = False
        yield line


def tool_version(path: str) -> str:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    return out.strip()


def tool_entry(name: str, path: str) -> dict[str, Any]:
    """What the manifest records about the tool that wrote a backup."""
    version = tool_version(path)
    return {"name": name, "path": path, "version": version, "major": parse_tool_major(version)}


def _stderr_problem(text: str) -> str | None:
    match = _ERROR_LINE.search(text)
    if not match:
        return None
    return " ".join(text[match.start():].split())[:2000]


def _run(cmd: list[str], env: dict[str, str], action: str) -> str:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL, umask=0o077)
    _check_result(proc.returncode, proc.stderr, action)
    return proc.stderr


def _check_result(returncode: int, stderr: str, action: str) -> None:
    if (returncode != 0 or _stderr_problem(stderr)) and recovery_conflict(stderr):
        detail = " ".join(stderr.split())[-1000:]
        raise DbopsError(f"{action}: {RECOVERY_CONFLICT_HINT} ({detail})", recovery_conflict=True)
    problem = _stderr_problem(stderr)
    if returncode < 0:
        raise DbopsError(f"{action}: killed by signal {-returncode}" + (f" ({problem})" if problem else ""))
    if returncode != 0:
        detail = problem or " ".join(stderr.split())[-2000:] or f"exit code {returncode}"
        raise DbopsError(f"{action}: {detail}")
    if problem:
        raise DbopsError(f"{action}: reported an error although it exited 0: {problem}")


# --------------------------------------------------------------------------- server-side facts

def _sql() -> Any:
    _postgres.require_driver()
    import psycopg2.sql  # noqa: PLC0415 - optional driver, imported once it is known to exist

    return psycopg2.sql


def connect(params: dict[str, Any], database: str, autocommit: bool = True) -> Any:
    try:
        return _postgres.connect(params, database=database, autocommit=autocommit)
    except DbopsError as exc:
        if re.search(r'database ".*" does not exist', exc.msg):
            raise DatabaseMissingError(f"back up PostgreSQL database {database}: the database does not exist "
                                       f"({exc.msg})") from exc
        raise


def table_counts(cur: Any) -> dict[str, int]:
    """Exact row count of every user table, ``schema.table`` -> rows (in the cursor's snapshot)."""
    sql = _sql()
    cur.execute(_TABLES_SQL)
    counts: dict[str, int] = {}
    for schema, table in cur.fetchall():
        cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema),
                                                                 sql.Identifier(table)))
        counts[f"{schema}.{table}"] = int(cur.fetchone()[0])
    return counts


def server_facts(conn: Any) -> dict[str, Any]:
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('server_version'), current_setting('server_version_num')::int,"
                    " (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database())")
        version, num, owner = cur.fetchone()
    return {"server_version": version, "server_major": num // 10000, "database_owner": owner}


def source_node(conn: Any) -> dict[str, Any]:
    """Which node a backup is taken from: primary or standby, and the WAL position it shows.

    On a standby the dump's snapshot sees the data replayed up to ``replay_lsn``;
    ``hot_standby_feedback`` on keeps recovery conflicts from cancelling a long dump, and
    ``max_standby_streaming_delay`` says how long replay waits for a conflicting query before it
    cancels it. On a primary, ``standbys`` counts the standbys connected to it (``prefer_standby``).
    """
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pg_is_in_recovery(), current_setting('cluster_name'),"
            " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text"
            "      ELSE pg_current_wal_lsn()::text END,"
            " current_setting('hot_standby_feedback')::bool,"
            " current_setting('max_standby_streaming_delay'),"
            " (SELECT count(*) FROM pg_stat_replication WHERE state IS NULL OR state = 'streaming')::int"
        )
        in_recovery, cluster_name, lsn, feedback, delay, standbys = cur.fetchone()
    node: dict[str, Any] = {"host": socket.gethostname(), "cluster_name": cluster_name or None,
                            "role": "standby" if in_recovery else "primary"}
    if in_recovery:
        node.update(replay_lsn=lsn, hot_standby_feedback=feedback, max_standby_streaming_delay=delay)
    else:
        node.update(wal_lsn=lsn, standbys=standbys)
    return node


def wrong_node(wanted: str, node: dict[str, Any]) -> str | None:
    """Why this node must not take a job's backup (None: it takes it).

    ``primary`` runs on the primary only, ``standby`` on standbys only (every standby that has the
    job), ``prefer_standby`` on standbys, and on the primary only while no standby is connected to
    it; ``any`` on whichever node has the job.
    The node says what it is (``pg_is_in_recovery()``); the inventory is not asked.
    """
    role = node.get("role")
    where = f"{node.get('host')} ({node.get('cluster_name') or 'PostgreSQL'})"
    if wanted == "primary" and role == "standby":
        return f"{where} is a standby (in recovery) and the job runs from the primary"
    if wanted == "standby" and role == "primary":
        return f"{where} is the primary (not in recovery) and the job runs from a standby"
    if wanted == "prefer_standby" and role == "primary" and node.get("standbys"):
        return (f"{where} is the primary and {node['standbys']} standby(s) are connected to it; "
                "the job runs from a standby while one is connected")
    return None


RECOVERY_CONFLICT_HINT = (
    "a recovery conflict cancelled the dump on this standby (replaying the primary's WAL needed rows "
    "or locks the dump still used): set hot_standby_feedback = on on the standby "
    "(postgresql_replication_hot_standby_feedback), raise max_standby_streaming_delay, or take the "
    "backup from the primary"
)


def recovery_conflict(text: str) -> bool:
    """Whether an error text says a standby cancelled the statement for a recovery conflict
    (``canceling statement due to conflict with recovery``, SQLSTATE 40001)."""
    return "conflict with recovery" in text


def owner_for_restore(conn: Any, manifest: dict[str, Any]) -> str | None:
    """The role that should own a database created for a restore: the backed-up database's owner.

    A backup login that is a member of that role (not a superuser) can then restore the objects with
    their owners, and the restored database belongs to the application as the original did. None
    when the manifest does not know the owner or the role no longer exists.
    """
    owner = manifest.get("database_owner")
    if not owner:
        return None
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,))
        return owner if cur.fetchone() else None


# --------------------------------------------------------------------------- backup

def backup_option_spec() -> dict[str, Any]:
    """The backup options of pg_backup (argument spec), also read from dbops-backup's config."""
    return {
        "database": {"type": "str", "required": True},
        "format": {"type": "str", "default": "custom", "choices": list(FORMATS)},
        "jobs": {"type": "int", "default": 1},
        "compression": {"type": "int"},
        "globals": {"type": "bool", "default": False},
        "bin_dir": {"type": "path"},
        "min_interval": {"type": "str"},
        "from": {"type": "str", "default": "primary", "choices": list(FROM_CHOICES)},
    }


def plan_backup(options: dict[str, Any]) -> dict[str, Any]:
    """What a backup would run (no password, no connection needed)."""
    fmt = options["format"]
    cmd = ["pg_dump", f"--format={fmt}", "--snapshot=<exported>", "--file=<root>/<id>.partial/"
           + PAYLOAD[fmt] + (".gz" if fmt == "plain" and options.get("compression") else "")]
    if fmt == "directory" and (options.get("jobs") or 1) > 1:
        cmd.append(f"--jobs={options['jobs']}")
    if options.get("compression") is not None:
        cmd.append(f"--compress={options['compression']}")
    cmd.append(options["database"])
    plan = {"engine": "postgresql", "database": options["database"], "format": fmt,
            "from": options.get("from") or "primary", "commands": [" ".join(cmd)]}
    if options.get("globals"):
        plan["commands"].append("pg_dumpall --globals-only --file=<root>/<id>.partial/globals.sql")
    return plan


def validate_options(options: dict[str, Any]) -> None:
    fmt = options.get("format")
    if fmt not in FORMATS:
        raise DbopsError(f"back up PostgreSQL database {options.get('database')}: unknown format {fmt!r} "
                         f"(choose one of {', '.join(FORMATS)})")
    jobs = 1 if options.get("jobs") is None else int(options["jobs"])
    if jobs < 1:
        raise DbopsError("back up PostgreSQL: jobs must be at least 1")
    if jobs > 1 and fmt != "directory":
        raise DbopsError("back up PostgreSQL: jobs > 1 needs format directory (pg_dump dumps in parallel "
                         "only into a directory)")
    level = options.get("compression")
    if level is not None and not 0 <= int(level) <= 9:
        raise DbopsError("back up PostgreSQL: compression must be between 0 and 9")
    wanted = options.get("from") or "primary"
    if wanted not in FROM_CHOICES:
        raise DbopsError(f"back up PostgreSQL database {options.get('database')}: unknown from {wanted!r} "
                         f"(choose one of {', '.join(FROM_CHOICES)})")


def check_node(conn: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The node's facts (source_node); WrongNodeError when the job's ``from`` says another node."""
    node = source_node(conn)
    why = wrong_node(options.get("from") or "primary", node)
    if why:
        raise WrongNodeError(f"back up PostgreSQL database {options['database']} from "
                             f"{options.get('from')}: {why}", source=node)
    return node


def preflight(params: dict[str, Any], options: dict[str, Any]) -> None:
    """Read-only (check mode): the login works, the database exists, the node is the job's."""
    conn = connect(params, options["database"])
    try:
        check_node(conn, options)
    finally:
        conn.close()


def _counts_during_dump(cur: Any, proc: Any, action: str) -> dict[str, int]:
    """table_counts() in the exported snapshot while pg_dump runs; pg_dump is stopped on failure."""
    try:
        return table_counts(cur)
    except BaseException as exc:
        proc.kill()
        proc.wait()
        if recovery_conflict(str(exc)):
            raise DbopsError(f"{action}: {RECOVERY_CONFLICT_HINT} ({' '.join(str(exc).split())})",
                             recovery_conflict=True) from exc
        raise


def backup(params: dict[str, Any], root: str, options: dict[str, Any]) -> dict[str, Any]:
    """Dump one database into a new backup under ``root``; return the manifest."""
    validate_options(options)
    database, fmt = options["database"], options["format"]
    jobs = int(options.get("jobs") or 1)
    catalog.check_root(root, writable=True)
    conn = connect(params, database, autocommit=False)
    try:
        source = {**check_node(conn, options), "from": options.get("from") or "primary"}
        facts = {**server_facts(conn), "source": source}
        conn.rollback()
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        pg_dump = find_tool("pg_dump", options.get("bin_dir"), facts["server_major"])
        with tool_env(params, database) as env, catalog.BackupWriter(root, "postgresql", database) as writer:
            payload = PAYLOAD[fmt]
            if fmt == "plain" and options.get("compression"):
                payload += ".gz"
            target = os.path.join(writer.partial, payload)
            with conn.cursor() as cur:
                cur.execute("SELECT pg_export_snapshot()")
                snapshot = cur.fetchone()[0]
                cmd = [pg_dump, f"--format={fmt}", f"--file={target}", f"--snapshot={snapshot}"]
                if fmt == "directory" and jobs > 1:
                    cmd.append(f"--jobs={jobs}")
                if options.get("compression") is not None:
                    cmd.append(f"--compress={int(options['compression'])}")
                action = f"back up PostgreSQL database {database} with pg_dump"
                stderr_path = os.path.join(env["DBOPS_PRIVATE_TMP"], "pg_dump.err")
                with open(stderr_path, "w+") as err:
                    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=err, umask=0o077)
                    counts = _counts_during_dump(cur, proc, action)
                    returncode = proc.wait()
                    err.seek(0)
                    stderr = err.read()
            conn.rollback()
            _check_result(returncode, stderr, action)
            _check_archive(fmt, target, action)
            warnings = [m.group(2) for m in _WARNING_LINE.finditer(stderr)]
            globals_file = None
            if options.get("globals"):
                pg_dumpall = find_tool("pg_dumpall", options.get("bin_dir"), facts["server_major"])
                _run([pg_dumpall, "--globals-only", f"--file={os.path.join(writer.partial, GLOBALS_FILE)}",
                      f"--database={_conninfo_dbname(database)}"],
                     env, f"dump roles and tablespaces of the PostgreSQL server holding {database}")
                globals_file = GLOBALS_FILE
            manifest = {
                "format": fmt,
                "payload": payload,
                "globals": globals_file,
                "compression": options.get("compression"),
                "jobs": jobs,
                "tool": tool_entry("pg_dump", pg_dump),
                "server_version": facts["server_version"],
                "database_owner": facts["database_owner"],
                "source": facts["source"],
                "counts": counts,
                "warnings": warnings,
            }
            return writer.publish(manifest, hash_workers=max(jobs, 1))
    finally:
        conn.close()


def _check_archive(fmt: str, target: str, action: str) -> None:
    """A dump that exits 0 but left no usable archive is a failure."""
    header_file = os.path.join(target, "toc.dat") if fmt == "directory" else target
    try:
        size = os.path.getsize(header_file)
        with open(header_file, "rb") as handle:
            head = handle.read(5)
    except OSError as exc:
        raise DbopsError(f"{action}: no archive was written ({exc.strerror})") from exc
    if size == 0:
        raise DbopsError(f"{action}: the archive {header_file} is empty")
    if fmt in ("custom", "directory") and head != b"PGDMP":
        raise DbopsError(f"{action}: {header_file} is not a pg_dump archive")


# --------------------------------------------------------------------------- restore

def database_exists(conn: Any, name: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return cur.fetchone() is not None


def database_is_empty(params: dict[str, Any], name: str) -> bool:
    conn = _postgres.connect(params, database=name, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(_USER_OBJECTS_SQL)
            return int(cur.fetchone()[0]) == 0
    finally:
        conn.close()


def restore_command(manifest: dict[str, Any], backup_dir: str, target: str, options: dict[str, Any],
                    tool: str) -> list[str]:
    payload = catalog.manifest_path(backup_dir, manifest, manifest.get("payload"))
    if manifest["format"] == "plain":
        return [tool, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", f"--dbname={target}"]
    cmd = [tool, "--exit-on-error", f"--dbname={target}"]
    if options.get("clean"):
        cmd += ["--clean", "--if-exists"]
    if (options.get("jobs") or 1) > 1:
        cmd.append(f"--jobs={int(options['jobs'])}")
    if options.get("no_owner"):
        cmd.append("--no-owner")
    if options.get("no_privileges"):
        cmd.append("--no-privileges")
    cmd.append(payload)
    return cmd


def run_restore(params: dict[str, Any], manifest: dict[str, Any], backup_dir: str, target: str, *,
                options: dict[str, Any], server_major: int | None) -> None:
    """Restore with the tool restore_tool() picks. Tools of 17+ write ``SET transaction_timeout``,
    which a server before 17 rejects: then the archive goes through ``pg_restore --file=-`` and the
    script, without that line, through psql (one session, no --jobs)."""
    fmt = manifest["format"]
    catalog.manifest_path(backup_dir, manifest, manifest.get("payload"))  # inside the backup, checksummed
    tool, tool_major = restore_tool(manifest, options.get("bin_dir"), server_major)
    cmd = restore_command(manifest, backup_dir, target, options, tool)
    # The connection string for --dbname is the plain database name; PGDATABASE carries it too.
    cmd = [c if not c.startswith("--dbname=") else f"--dbname={_conninfo_dbname(target)}" for c in cmd]
    action = f"restore backup {manifest['id']} into PostgreSQL database {target}"
    writer_major = dump_tool_major(manifest) if fmt == "plain" else tool_major
    filtered = needs_timeout_filter(writer_major, server_major)
    with tool_env(params, target) as env:
        if fmt != "plain" and not filtered:
            _run(cmd, env, action)
            return
        if fmt == "plain":
            psql_cmd = cmd
        else:
            psql = choose_tool("psql", find_tools("psql", options.get("bin_dir")), None, server_major)[0]
            psql_cmd = restore_command({**manifest, "format": "plain"}, backup_dir, target, {}, psql)
            psql_cmd = [c if not c.startswith("--dbname=") else f"--dbname={_conninfo_dbname(target)}"
                        for c in psql_cmd]
        _pipe_into_psql(manifest, backup_dir, cmd if fmt != "plain" else None, psql_cmd=psql_cmd, env=env,
                        action=action, filtered=filtered)


def _pipe_into_psql(manifest: dict[str, Any], backup_dir: str, script_cmd: list[str] | None, *,
                    psql_cmd: list[str], env: dict[str, str], action: str, filtered: bool) -> None:
    """Feed psql a plain dump, or the script ``pg_restore --file=-`` writes from an archive."""
    stderr_path = os.path.join(env["DBOPS_PRIVATE_TMP"], "psql.err")
    script_err_path = os.path.join(env["DBOPS_PRIVATE_TMP"], "pg_restore.err")
    feeder = None
    with contextlib.ExitStack() as stack:
        err = stack.enter_context(open(stderr_path, "w+"))
        if script_cmd is None:
            payload = catalog.manifest_path(backup_dir, manifest, manifest.get("payload"))
            opener = gzip.open if payload.endswith(".gz") else open
            src = stack.enter_context(opener(payload, "rb"))
        else:
            script_err = stack.enter_context(open(script_err_path, "w+"))
            args = [c for c in script_cmd if not c.startswith(("--dbname=", "--jobs="))]
            feeder = subprocess.Popen([*args[:-1], "--file=-", args[-1]], env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=script_err)
            src = feeder.stdout
        proc = subprocess.Popen(psql_cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=err)
        if proc.stdin is None or src is None:  # pragma: no cover - stdin=PIPE always gives one
            raise RuntimeError("psql was started without a stdin pipe")
        try:
            if filtered:
                for line in filter_header(iter(src.readline, b"")):
                    proc.stdin.write(line)
            else:
                shutil.copyfileobj(src, proc.stdin, 1024 * 1024)
        except BrokenPipeError:
            pass
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        returncode = proc.wait()
        if feeder is not None:
            if returncode != 0:
                feeder.kill()
            feeder_code = feeder.wait()
            script_err.seek(0)
            if returncode == 0:
                _check_result(feeder_code, script_err.read(), action)
        err.seek(0)
        _check_result(returncode, err.read(), action)


def _conninfo_dbname(name: str) -> str:
    return "dbname='" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_database(conn: Any, name: str, owner: str | None = None) -> None:
    sql = _sql()
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
    if owner:
        statement = sql.SQL("{} OWNER {}").format(statement, sql.Identifier(owner))
    with conn.cursor() as cur:
        cur.execute(statement)


def drop_database(conn: Any, name: str) -> None:
    sql = _sql()
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def counts_in(params: dict[str, Any], database: str) -> dict[str, int]:
    conn = _postgres.connect(params, database=database, autocommit=False)
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with conn.cursor() as cur:
            return table_counts(cur)
    finally:
        conn.close()


def maintenance_connect(params: dict[str, Any]) -> Any:
    return _postgres.connect(params, database=params.get("login_db") or "postgres", autocommit=True)


def restore_test(params: dict[str, Any], manifest: dict[str, Any], backup_dir: str, scratch: str, *,
                 jobs: int = 1, bin_dir: str | None = None) -> dict[str, Any]:
    """Restore into a new scratch database, count rows, drop it. Returns counts and timings."""
    conn = maintenance_connect(params)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery()")
            if cur.fetchone()[0]:
                raise WrongNodeError(f"restore-test backup {manifest['id']}: this server is a read-only "
                                     "standby (in recovery); restore tests need a writable server")
        if database_exists(conn, scratch):
            raise DbopsError(f"restore-test backup {manifest['id']}: the scratch database {scratch} already "
                             "exists (drop it or choose another scratch_database)")
        facts = server_facts(conn)
        restore_tool(manifest, bin_dir, facts["server_major"])
        started = time.monotonic()
        create_database(conn, scratch, owner_for_restore(conn, manifest))
        try:
            run_restore(params, manifest, backup_dir, scratch,
                        options={"jobs": jobs if manifest["format"] in ("custom", "directory") else 1,
                                 "bin_dir": bin_dir},
                        server_major=facts["server_major"])
            rto = time.monotonic() - started
            counts = counts_in(params, scratch)
        finally:
            drop_database(conn, scratch)
    finally:
        conn.close()
    return {"counts": counts, "rto_s": round(rto, 3)}
