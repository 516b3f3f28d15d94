# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health facts from a PostgreSQL server, read-only, as a ``pg_monitor`` member or a superuser.

:func:`gather` reads cluster-wide facts (server, connections, activity, locks, databases,
replication) over one connection and table/index facts over one connection per inspected database
(``pg_stat_user_tables`` and friends are per database). ``pg_stat_statements`` is used when the
extension is installed in one of the inspected databases and loaded; otherwise ``statements``
says why not. The checks live in ``_pg_health_checks``, the scoring model in
``_health``.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Callable

from ansible_collections.dbops.datastores.plugins.module_utils import _migrations as mig
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

QUERY_TEXT_LIMIT = 1000
MIGRATION_TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")


def ratio_percent(part: float | None, whole: float | None, digits: int = 2) -> float | None:
    """``100 * part / whole`` rounded, or None when ``whole`` is 0/None (nothing measured)."""
    if not whole or part is None:
        return None
    return round(100.0 * float(part) / float(whole), digits)


def iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(datetime.timezone.utc).isoformat()
    return str(value)


def seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def statements_unavailable_reason(
    installed_in: list[str], preload: str, inspected: list[str], error: str | None
) -> str:
    """Why pg_stat_statements cannot be used, in words an operator acts on."""
    loaded = "pg_stat_statements" in [p.strip() for p in preload.split(",")]
    if installed_in and error:
        return f"the extension is installed in {installed_in[0]} but cannot be read: {error}"
    where = ", ".join(inspected) or "the inspected databases"
    if loaded:
        return f"the library is loaded but CREATE EXTENSION pg_stat_statements was not run in {where}"
    return (
        f"pg_stat_statements is not in shared_preload_libraries and the extension is not installed in {where}"
    )


def migration_state(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Current version from a pg_migrate history table's rows (``_migrations.history_state`` rules).

    Rows are replayed by ``installed_rank``/``rank`` when present, else ``installed_on``; a row whose
    version is not a version is ignored. A baseline row counts as applied.
    """

    def order(row: dict[str, Any]) -> tuple[Any, ...]:
        rank = row.get("installed_rank", row.get("rank"))
        return (rank if rank is not None else 0, str(row.get("installed_on") or ""))

    def valid(version: Any) -> bool:
        try:
            return version in (None, "") or bool(mig.parse_version(version))
        except ValueError:
            return False

    history = [
        mig.HistoryRow(
            rank=number, kind=str(row.get("type") or mig.KIND_VERSIONED).lower(),
            version=None if row.get("version") in (None, "") else str(row.get("version")),
            description=str(row.get("description") or ""), script=str(row.get("script") or ""),
            checksum=row.get("checksum"), success=row.get("success") is not False,
            installed_on=row.get("installed_on"),
        )
        for number, row in enumerate(sorted(rows, key=order)) if valid(row.get("version"))
    ]
    state = mig.history_state(history)
    current = state.current()
    applied_count = len(state.applied) + (1 if state.baseline is not None else 0)
    if current is None:
        return {"version": None, "installed_on": None, "description": None, "applied_count": 0,
                "failed_count": len(state.failed)}
    row = state.applied.get(current) or state.baseline
    return {
        "version": row.version if row is not None else str(current),
        "description": row.description if row is not None else None,
        "installed_on": iso(row.installed_on) if row is not None else None,
        "applied_count": applied_count,
        "failed_count": len(state.failed),
    }


# Size functions open the relation and would queue behind an ACCESS EXCLUSIVE lock (ALTER TABLE,
# LOCK TABLE, VACUUM FULL): such relations get no size instead of blocking the health check.
# pg_locks is read once per query (a materialized CTE), not once per relation.
_LOCKED_CTE = (
    "WITH locked AS MATERIALIZED (SELECT DISTINCT relation FROM pg_locks"
    " WHERE mode = 'AccessExclusiveLock' AND pid <> pg_backend_pid() AND relation IS NOT NULL) "
)
SESSION_SETTINGS = "SET lock_timeout = '5s'; SET statement_timeout = '120s'"


def _rows(conn: Any, sql: str, args: Any = None) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def _server(conn: Any) -> dict[str, Any]:
    row = _rows(
        conn,
        """
        SELECT current_setting('server_version') AS version,
               current_setting('server_version_num')::int AS version_num,
               pg_is_in_recovery() AS in_recovery,
               pg_postmaster_start_time() AS started_at,
               extract(epoch FROM now() - pg_postmaster_start_time()) AS uptime_seconds,
               current_setting('max_connections')::int AS max_connections,
               current_setting('superuser_reserved_connections')::int AS reserved_connections,
               current_setting('shared_preload_libraries') AS shared_preload_libraries,
               current_setting('track_counts') AS track_counts,
               current_setting('autovacuum') AS autovacuum,
               current_user AS login_user,
               now() AS collected_at
    """,
    )[0]
    return {
        "version": row["version"],
        "version_num": row["version_num"],
        "in_recovery": row["in_recovery"],
        "started_at": iso(row["started_at"]),
        "uptime_seconds": seconds(row["uptime_seconds"]),
        "max_connections": row["max_connections"],
        "reserved_connections": row["reserved_connections"],
        "shared_preload_libraries": row["shared_preload_libraries"],
        "track_counts": row["track_counts"] == "on",
        "autovacuum": row["autovacuum"] == "on",
        "login_user": row["login_user"],
        "collected_at": iso(row["collected_at"]),
    }


def _connections(conn: Any, max_connections: int) -> dict[str, Any]:
    rows = _rows(
        conn,
        """
        SELECT coalesce(state, 'unknown') AS state, coalesce(datname, '') AS datname, count(*) AS n
        FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1, 2
    """,
    )
    by_state: dict[str, int] = {}
    by_database: dict[str, int] = {}
    for row in rows:
        by_state[row["state"]] = by_state.get(row["state"], 0) + row["n"]
        if row["datname"]:
            by_database[row["datname"]] = by_database.get(row["datname"], 0) + row["n"]
    current = sum(by_state.values())
    return {
        "current": current,
        "max": max_connections,
        "usage_percent": ratio_percent(current, max_connections, 1),
        "by_state": by_state,
        "by_database": by_database,
    }


_ACTIVITY_SQL = """
    SELECT pid, datname AS database, usename AS user, application_name,
           client_addr::text AS client_addr, state, wait_event_type, wait_event,
           extract(epoch FROM now() - {start}) AS duration_seconds,
           left(query, %(limit)s) AS query
    FROM pg_stat_activity
    WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND {where}
      AND now() - {start} >= make_interval(secs => %(min)s)
    ORDER BY {start} LIMIT 50
"""


def _activity(conn: Any, long_min: float, idle_min: float) -> dict[str, Any]:
    long_rows = _rows(
        conn,
        _ACTIVITY_SQL.format(start="query_start", where="state = 'active'"),
        {"limit": QUERY_TEXT_LIMIT, "min": long_min},
    )
    idle_rows = _rows(
        conn,
        _ACTIVITY_SQL.format(start="state_change", where="state LIKE 'idle in transaction%%'"),
        {"limit": QUERY_TEXT_LIMIT, "min": idle_min},
    )
    for row in long_rows + idle_rows:
        row["duration_seconds"] = seconds(row["duration_seconds"])
    return {"long_running": long_rows, "idle_in_transaction": idle_rows}


def version_skips(version_num: int) -> dict[str, str]:
    """Checks this server version cannot evaluate, check id -> reason (shown as ``skipped``)."""
    skips: dict[str, str] = {}
    if version_num < 140000:
        skips["lock_waits"] = (
            f"PostgreSQL {version_num // 10000} does not record when a lock wait began (pg_locks.waitstart "
            "is new in 14): waiting sessions are listed in locks.blocked without wait_seconds"
        )
    return skips


def _locks(conn: Any, version_num: int) -> dict[str, Any]:
    modes = _rows(conn, "SELECT mode, granted, count(*) AS n FROM pg_locks GROUP BY 1, 2 ORDER BY 1")
    # Before 14 the start of a wait is unknown; the query's age would overstate it, so no number.
    wait = "extract(epoch FROM now() - w.since)" if version_num >= 140000 else "NULL::float"
    wait_start = "min(l.waitstart)" if version_num >= 140000 else "NULL::timestamptz"
    blocked = _rows(
        conn,
        f"""
        SELECT a.pid, a.datname AS database, a.usename AS user, pg_blocking_pids(a.pid) AS blocked_by,
               {wait} AS wait_seconds,
               w.locktype, left(a.query, %(limit)s) AS query
        FROM pg_stat_activity a
        JOIN (SELECT l.pid, {wait_start} AS since, min(l.locktype) AS locktype
              FROM pg_locks l WHERE NOT l.granted GROUP BY l.pid) w ON w.pid = a.pid
        ORDER BY wait_seconds DESC NULLS LAST LIMIT 50
    """,
        {"limit": QUERY_TEXT_LIMIT},
    )
    for row in blocked:
        row["wait_seconds"] = seconds(row["wait_seconds"])
        row["blocked_by"] = list(row["blocked_by"] or [])
    by_mode: dict[str, int] = {}
    waiting = 0
    for row in modes:
        by_mode[row["mode"]] = by_mode.get(row["mode"], 0) + row["n"]
        if not row["granted"]:
            waiting += row["n"]
    return {"total": sum(by_mode.values()), "waiting": waiting, "by_mode": by_mode, "blocked": blocked}


def _databases(conn: Any) -> list[dict[str, Any]]:
    rows = _rows(
        conn,
        """
        SELECT d.datname AS name,
               CASE WHEN has_database_privilege(d.oid, 'CONNECT')
                      OR pg_has_role('pg_read_all_stats', 'MEMBER')
                    THEN pg_database_size(d.oid) END AS size_bytes,
               s.numbackends AS connections, s.xact_commit, s.xact_rollback, s.blks_hit, s.blks_read,
               s.deadlocks, s.temp_files, s.temp_bytes, s.conflicts, s.stats_reset,
               age(d.datfrozenxid) AS xid_age, d.datallowconn AS allow_connections,
               has_database_privilege(d.oid, 'CONNECT') AS can_connect
        FROM pg_database d LEFT JOIN pg_stat_database s ON s.datid = d.oid
        WHERE NOT d.datistemplate ORDER BY d.datname
    """,
    )
    for row in rows:
        row["cache_hit_ratio_percent"] = ratio_percent(
            row["blks_hit"], (row["blks_hit"] or 0) + (row["blks_read"] or 0)
        )
        row["stats_reset"] = iso(row["stats_reset"])
    return rows


def _cache(conn: Any) -> dict[str, Any]:
    row = _rows(
        conn, "SELECT sum(blks_hit)::bigint AS hit, sum(blks_read)::bigint AS read FROM pg_stat_database"
    )[0]
    hit, read = row["hit"] or 0, row["read"] or 0
    return {"blocks_hit": hit, "blocks_read": read, "hit_ratio_percent": ratio_percent(hit, hit + read)}


def _archiver(conn: Any) -> dict[str, Any]:
    """pg_stat_archiver, with the age of the last success and failure measured by the server."""
    row = _rows(conn, """
        SELECT current_setting('archive_mode') AS archive_mode, archived_count, last_archived_wal,
               last_archived_time, failed_count, last_failed_wal, last_failed_time, stats_reset,
               extract(epoch FROM now() - last_archived_time)::float8 AS last_archived_seconds_ago,
               extract(epoch FROM now() - last_failed_time)::float8 AS last_failed_seconds_ago
        FROM pg_stat_archiver
    """)[0]
    for key in ("last_archived_time", "last_failed_time", "stats_reset"):
        row[key] = iso(row[key])
    return row


def _replication(conn: Any, in_recovery: bool) -> dict[str, Any]:
    result: dict[str, Any] = {
        "role": "standby" if in_recovery else "primary",
        "replicas": [],
        "standby": None,
    }
    if not in_recovery:
        replicas = _rows(
            conn,
            """
            SELECT application_name, client_addr::text AS client_addr, state, sync_state,
                   extract(epoch FROM write_lag) AS write_lag_seconds,
                   extract(epoch FROM flush_lag) AS flush_lag_seconds,
                   extract(epoch FROM replay_lag) AS replay_lag_seconds,
                   pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS lag_bytes
            FROM pg_stat_replication ORDER BY application_name
        """,
        )
        for row in replicas:
            for key in ("write_lag_seconds", "flush_lag_seconds", "replay_lag_seconds"):
                row[key] = seconds(row[key])
        result["replicas"] = replicas
        lsn = "pg_current_wal_lsn()"
    else:
        standby = _rows(
            conn,
            """
            SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                        ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())
                   END AS replay_lag_seconds,
                   pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint AS lag_bytes,
                   pg_last_xact_replay_timestamp() AS last_replayed_at
        """,
        )[0]
        standby["replay_lag_seconds"] = seconds(standby["replay_lag_seconds"])
        standby["last_replayed_at"] = iso(standby["last_replayed_at"])
        result["standby"] = standby
        lsn = "pg_last_wal_replay_lsn()"
    result["slots"] = _rows(
        conn,
        f"""
        SELECT slot_name, slot_type, database, active,
               pg_wal_lsn_diff({lsn}, restart_lsn)::bigint AS retained_bytes
        FROM pg_replication_slots ORDER BY slot_name
    """,
    )
    return result


def _tables(conn: Any, database: str) -> list[dict[str, Any]]:
    rows = _rows(
        conn,
        _LOCKED_CTE
        + """
        SELECT t.schemaname AS schema, t.relname AS name,
               CASE WHEN NOT x.locked THEN pg_table_size(t.relid) END AS table_bytes,
               CASE WHEN NOT x.locked THEN pg_indexes_size(t.relid) END AS index_bytes, x.locked,
               t.n_live_tup AS live_tuples, t.n_dead_tup AS dead_tuples,
               t.n_mod_since_analyze AS mod_since_analyze,
               t.seq_scan, coalesce(t.idx_scan, 0) AS idx_scan,
               t.last_vacuum, t.last_autovacuum, t.last_analyze, t.last_autoanalyze,
               t.vacuum_count, t.autovacuum_count,
               io.heap_blks_hit, io.heap_blks_read,
               coalesce((SELECT o.option_value FROM pg_options_to_table(c.reloptions) o
                         WHERE o.option_name = 'autovacuum_enabled'), 'on') AS autovacuum_enabled
        FROM pg_stat_user_tables t
        JOIN pg_class c ON c.oid = t.relid
        LEFT JOIN pg_statio_user_tables io ON io.relid = t.relid
        CROSS JOIN LATERAL (SELECT t.relid IN (SELECT relation FROM locked) AS locked) x
    """,
    )
    for row in rows:
        row["database"] = database
        # pg_total_relation_size() is exactly this sum; computing it again would stat every file twice.
        row["total_bytes"] = None if row["locked"] else row["table_bytes"] + row["index_bytes"]
        live, dead = row["live_tuples"] or 0, row["dead_tuples"] or 0
        row["dead_ratio_percent"] = ratio_percent(dead, live + dead, 1)
        # Estimate: the share of the heap taken by dead tuples (pgstattuple gives exact numbers).
        table_bytes = row["table_bytes"]
        row["bloat_estimate_bytes"] = (
            (int(table_bytes * dead / (live + dead)) if live + dead else 0)
            if table_bytes is not None
            else None
        )
        row["index_usage_percent"] = ratio_percent(row["idx_scan"], row["seq_scan"] + row["idx_scan"], 1)
        hit, read = row["heap_blks_hit"] or 0, row["heap_blks_read"] or 0
        row["cache_hit_ratio_percent"] = ratio_percent(hit, hit + read, 1)
        row["autovacuum_enabled"] = str(row["autovacuum_enabled"]).lower() in ("on", "true", "yes", "1")
        for key in ("last_vacuum", "last_autovacuum", "last_analyze", "last_autoanalyze"):
            row[key] = iso(row[key])
    return rows


def _index_io(conn: Any) -> tuple[int, int]:
    row = _rows(
        conn,
        "SELECT coalesce(sum(idx_blks_hit), 0)::bigint AS hit, coalesce(sum(idx_blks_read), 0)::bigint"
        " AS read FROM pg_statio_user_indexes",
    )[0]
    return row["hit"], row["read"]


def _unused_indexes(conn: Any, database: str, stats_reset: str | None) -> list[dict[str, Any]]:
    rows = _rows(
        conn,
        _LOCKED_CTE
        + """
        SELECT s.schemaname AS schema, s.relname AS table, s.indexrelname AS name,
               CASE WHEN s.indexrelid NOT IN (SELECT relation FROM locked)
                     AND s.relid NOT IN (SELECT relation FROM locked)
                    THEN pg_relation_size(s.indexrelid) END AS size_bytes, s.idx_scan
        FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
        WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary AND i.indisvalid
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid)
        ORDER BY 4 DESC NULLS LAST, s.indexrelname
    """,
    )
    for row in rows:
        row["database"] = database
        row["stats_reset"] = stats_reset
    return rows


def _statements_installed(conn: Any) -> bool:
    return bool(_rows(conn, "SELECT 1 AS x FROM pg_extension WHERE extname = 'pg_stat_statements'"))


def _statements(conn: Any, version_num: int, slow_ms: float, top: int) -> dict[str, Any]:
    prefix = "" if version_num >= 130000 else "_time"  # PostgreSQL 12 names the columns total_time etc.
    cols = (
        ("total_exec_time", "mean_exec_time", "max_exec_time")
        if not prefix
        else ("total_time", "mean_time", "max_time")
    )
    select = f"""
        SELECT s.queryid::text AS queryid, d.datname AS database, r.rolname AS user, s.calls,
               round(s.{cols[0]}::numeric, 3)::float AS total_ms,
               round(s.{cols[1]}::numeric, 3)::float AS mean_ms,
               round(s.{cols[2]}::numeric, 3)::float AS max_ms, s.rows, left(s.query, %(limit)s) AS query
        FROM pg_stat_statements s
        LEFT JOIN pg_database d ON d.oid = s.dbid LEFT JOIN pg_roles r ON r.oid = s.userid
    """
    slow = _rows(
        conn,
        select + f" WHERE s.{cols[1]} >= %(slow)s ORDER BY s.{cols[1]} DESC LIMIT %(top)s",
        {"limit": QUERY_TEXT_LIMIT, "slow": slow_ms, "top": top},
    )
    heavy = _rows(
        conn, select + f" ORDER BY s.{cols[0]} DESC LIMIT %(top)s", {"limit": QUERY_TEXT_LIMIT, "top": top}
    )
    return {"available": True, "reason": None, "slow": slow, "top_total_time": heavy}


def _migration(conn: Any, table: str) -> dict[str, Any] | None:
    exists = _rows(conn, "SELECT to_regclass(%s) IS NOT NULL AS found", [table])[0]["found"]
    if not exists:
        return None
    schema, _dot, name = table.rpartition(".")
    quoted = ".".join('"' + part.replace('"', '""') + '"' for part in ([schema, name] if schema else [name]))
    try:
        rows = _rows(conn, f"SELECT * FROM {quoted}")
    except Exception as exc:  # psycopg2.Error: permission denied and the like
        conn.rollback()
        return {"table": table, "version": None, "error": str(exc).strip().splitlines()[0]}
    state = migration_state(rows)
    state["table"] = table
    return state


def _session(connect: Callable[[str | None], Any], database: str | None) -> Any:
    """A connection whose statements give up instead of waiting long for locks."""
    conn = connect(database)
    with conn.cursor() as cur:
        cur.execute(SESSION_SETTINGS)
    return conn


def _cluster(main: Any, thresholds: dict[str, float]) -> dict[str, Any]:
    """Facts that one connection sees for the whole cluster."""
    server = _server(main)
    facts: dict[str, Any] = {"server": server}
    facts["connections"] = _connections(main, server["max_connections"])
    facts["activity"] = _activity(
        main,
        min(thresholds["long_query_warning_seconds"], thresholds["long_query_critical_seconds"]),
        min(
            thresholds["idle_in_transaction_warning_seconds"],
            thresholds["idle_in_transaction_critical_seconds"],
        ),
    )
    facts["locks"] = _locks(main, server["version_num"])
    # Not "skipped": Ansible reads a truthy "skipped" in a result as a skipped task.
    facts["unavailable_checks"] = version_skips(server["version_num"])
    facts["databases"] = _databases(main)
    facts["cache"] = _cache(main)
    facts["replication"] = _replication(main, server["in_recovery"])
    facts["archiver"] = _archiver(main)
    facts["login_database"] = _rows(main, "SELECT current_database() AS d")[0]["d"]
    return facts


class _Inspection:
    """What the per-database connections found, accumulated."""

    def __init__(self) -> None:
        self.tables: list[dict[str, Any]] = []
        self.unused: list[dict[str, Any]] = []
        self.migrations: list[dict[str, Any]] = []
        self.skipped: list[dict[str, str]] = []
        self.inspected: list[str] = []
        self.idx_hit = 0
        self.idx_read = 0
        self.statements: dict[str, Any] | None = None
        self.installed_in: list[str] = []
        self.statements_error: str | None = None

    def add(self, conn: Any, name: str, stats_reset: str | None, options: dict[str, Any]) -> None:
        self.inspected.append(name)
        self.tables.extend(_tables(conn, name))
        self.unused.extend(_unused_indexes(conn, name, stats_reset))
        hit, read = _index_io(conn)
        self.idx_hit += hit
        self.idx_read += read
        if options["migration_table"]:
            state = _migration(conn, options["migration_table"])
            if state is not None:
                state["database"] = name
                self.migrations.append(state)
        if self.statements is None and _statements_installed(conn):
            self.installed_in.append(name)
            try:
                self.statements = _statements(
                    conn, options["version_num"], options["slow_ms"], options["top"]
                )
                self.statements["database"] = name
            except Exception as exc:  # not loaded via shared_preload_libraries, or no privilege
                self.statements_error = str(exc).strip().splitlines()[0]


def gather(
    connect: Callable[[str | None], Any],
    databases: list[str] | None,
    thresholds: dict[str, float],
    migration_table: str | None,
    statements_top: int = 10,
) -> dict[str, Any]:
    """Collect the facts. ``connect(dbname)`` returns an autocommit psycopg2 connection."""
    if migration_table and not MIGRATION_TABLE_RE.match(migration_table):
        raise DbopsError(f"read migration history {migration_table!r}: not a table name (schema.table)")
    main = _session(connect, None)
    try:
        facts = _cluster(main, thresholds)
    finally:
        main.close()
    server = facts["server"]
    known = {d["name"]: d for d in facts["databases"]}
    if databases:
        missing = [name for name in databases if name not in known]
        if missing:
            raise DbopsError(f"read health facts of database(s) {', '.join(missing)}: no such database")
        targets = list(databases)
    else:
        targets = [d["name"] for d in facts["databases"] if d["allow_connections"] and d["can_connect"]]

    found = _Inspection()
    options = {
        "migration_table": migration_table,
        "version_num": server["version_num"],
        "slow_ms": thresholds["slow_query_warning_ms"],
        "top": statements_top,
    }
    for name in targets:
        try:
            conn = _session(connect, name)
        except DbopsError as exc:
            found.skipped.append({"database": name, "reason": exc.msg})
            continue
        try:
            found.add(conn, name, known[name]["stats_reset"], options)
        finally:
            conn.close()

    statements = found.statements or {
        "available": False,
        "database": None,
        "slow": [],
        "top_total_time": [],
        "reason": statements_unavailable_reason(
            found.installed_in,
            server["shared_preload_libraries"],
            found.inspected or [facts["login_database"]],
            found.statements_error,
        ),
    }
    tables = sorted(
        found.tables, key=lambda t: (-(t["total_bytes"] or 0), t["database"], t["schema"], t["name"])
    )
    facts.update(
        all_tables=tables,
        unused_indexes=found.unused,
        statements=statements,
        migrations=found.migrations,
        inspected_databases=found.inspected,
        skipped_databases=found.skipped,
    )
    facts["cache"]["index_hit_ratio_percent"] = ratio_percent(found.idx_hit, found.idx_hit + found.idx_read)
    heap_hit = sum(t["heap_blks_hit"] or 0 for t in tables)
    heap_read = sum(t["heap_blks_read"] or 0 for t in tables)
    facts["cache"]["table_hit_ratio_percent"] = ratio_percent(heap_hit, heap_hit + heap_read)
    facts["size_bytes"] = sum(d["size_bytes"] or 0 for d in facts["databases"])
    return facts


def summarize(facts: dict[str, Any], max_tables: int) -> dict[str, Any]:
    """The facts as returned by the module: the largest ``max_tables`` tables only."""
    result = dict(facts)
    tables = result.pop("all_tables")
    result["tables"] = tables[:max_tables]
    result["tables_total"] = len(tables)
    return result
