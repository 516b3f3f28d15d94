# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PostgreSQL health checks of ``pg_health_info`` and their default thresholds.

Each check is a pure function over the facts of ``_pg_health.gather``; the scoring model
(:class:`Check`, :func:`evaluate`, severities) is ``_health``.
"""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._health import (
    CRITICAL,
    GIB,
    INFO,
    MIB,
    OK,
    SKIPPED,
    WARNING,
    Check,
    CheckResult,
    Finding,
    classify,
    connections_check,
    duration_findings,
    evaluate,
    human_bytes,
    human_seconds,
    merge_thresholds,
    not_enough_data,
    observed_seconds,
    result_of,
    rounded,
)

# Defaults for pg_health_info (documented in the module and docs/health.md).
PG_THRESHOLDS: dict[str, float] = {
    "connections_warning_percent": 80,
    "connections_critical_percent": 95,
    "cache_hit_warning_percent": 90,
    "cache_hit_critical_percent": 80,
    "cache_min_blocks": 1000,
    "long_query_warning_seconds": 60,
    "long_query_critical_seconds": 300,
    "idle_in_transaction_warning_seconds": 60,
    "idle_in_transaction_critical_seconds": 600,
    "lock_wait_warning_seconds": 5,
    "lock_wait_critical_seconds": 30,
    "dead_tuples_warning_percent": 20,
    "dead_tuples_critical_percent": 50,
    "dead_tuples_min": 1000,
    "stale_statistics_min_changes": 1000,
    "stale_statistics_percent": 20,
    "unused_index_min_bytes": MIB,
    "unused_index_min_observation_seconds": 7 * 86400,
    "index_usage_min_percent": 50,
    "index_usage_min_rows": 10000,
    "index_usage_min_scans": 100,
    "slow_query_warning_ms": 100,
    "slow_query_critical_ms": 1000,
    "slow_query_min_calls": 1,
    "replication_lag_warning_seconds": 30,
    "replication_lag_critical_seconds": 300,
    "slot_retained_warning_bytes": GIB,
    "slot_retained_critical_bytes": 10 * GIB,
    "xid_age_warning": 500_000_000,
    "xid_age_critical": 1_000_000_000,
    "archive_failure_recent_seconds": 3600,
}


# ---------------------------------------------------------------------------------------------
# PostgreSQL checks
# ---------------------------------------------------------------------------------------------


def _pg_table_name(table: dict[str, Any]) -> str:
    return f"{table.get('database')}.{table.get('schema')}.{table.get('name')}"


def _pg_quoted(table: dict[str, Any]) -> str:
    return f'"{table.get("schema")}"."{table.get("name")}"'


def _pg_cache(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    cache = facts.get("cache") or {}
    ratio = cache.get("hit_ratio_percent")
    blocks = (cache.get("blocks_hit") or 0) + (cache.get("blocks_read") or 0)
    if ratio is None:
        return CheckResult(SKIPPED, reason="no block statistics reported")
    if blocks < t["cache_min_blocks"]:
        return CheckResult(SKIPPED, reason=f"only {blocks} block reads so far (cache_min_blocks)")
    severity = classify(
        ratio, t["cache_hit_warning_percent"], t["cache_hit_critical_percent"], higher_is_worse=False
    )
    if severity == OK:
        return CheckResult(OK)
    return result_of(
        [
            Finding(
                "cache_hit_ratio",
                severity,
                f"buffer cache hit ratio is {ratio:.2f}% (target {t['cache_hit_warning_percent']:g}%)",
                "Raise shared_buffers (about 25% of RAM is the usual start) or reduce the working set: "
                "look for "
                "sequential scans on large tables and missing indexes.",
                value=rounded(ratio, 2),
                threshold=t["cache_hit_warning_percent"]
                if severity == WARNING
                else t["cache_hit_critical_percent"],
            )
        ]
    )


def _pg_activity_describe(item: dict[str, Any], what: str) -> tuple[str, str]:
    query = (item.get("query") or "").strip().replace("\n", " ")
    if len(query) > 80:
        query = query[:77] + "..."
    return (
        f"pid {item.get('pid')}",
        f"{what} for {human_seconds(item.get('duration_seconds'))} by {item.get('user')} on "
        f"{item.get('database')}: {query}",
    )


def _pg_long_queries(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    activity = facts.get("activity") or {}
    return duration_findings(
        "long_running_queries",
        activity.get("long_running") or [],
        "duration_seconds",
        (t["long_query_warning_seconds"], t["long_query_critical_seconds"]),
        describe=lambda i: _pg_activity_describe(i, "query running"),
        fix=lambda i: (
            "Check the plan with EXPLAIN; cancel it with "
            f"SELECT pg_cancel_backend({i.get('pid')}); "
            "cap runaway queries with statement_timeout for the role."
        ),
    )


def _pg_idle_in_transaction(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    activity = facts.get("activity") or {}
    return duration_findings(
        "idle_in_transaction",
        activity.get("idle_in_transaction") or [],
        "duration_seconds",
        (t["idle_in_transaction_warning_seconds"], t["idle_in_transaction_critical_seconds"]),
        describe=lambda i: _pg_activity_describe(i, "idle in transaction"),
        fix=lambda i: (
            f"Fix the client that leaves transactions open; end this one with "
            f"SELECT pg_terminate_backend({i.get('pid')}); set idle_in_transaction_session_timeout."
        ),
    )


def _pg_lock_waits(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    locks = facts.get("locks") or {}
    return duration_findings(
        "lock_waits",
        locks.get("blocked") or [],
        "wait_seconds",
        (t["lock_wait_warning_seconds"], t["lock_wait_critical_seconds"]),
        describe=lambda i: (
            f"pid {i.get('pid')}",
            f"waiting {human_seconds(i.get('wait_seconds'))} for a lock held by pid(s) "
            f"{', '.join(str(p) for p in i.get('blocked_by') or []) or '?'} on {i.get('database')}",
        ),
        fix=lambda i: (
            "Find what the blocker is doing in pg_stat_activity; end it with "
            f"SELECT pg_terminate_backend({(i.get('blocked_by') or ['<pid>'])[0]}) if it is stuck; "
            "set lock_timeout for DDL and batch jobs."
        ),
    )


def _pg_dead_tuples(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    findings = []
    for table in facts.get("all_tables") or facts.get("tables") or []:
        dead = table.get("dead_tuples") or 0
        if dead < t["dead_tuples_min"]:
            continue
        ratio = table.get("dead_ratio_percent")
        severity = classify(ratio, t["dead_tuples_warning_percent"], t["dead_tuples_critical_percent"])
        if severity == OK:
            continue
        autovac = "" if table.get("autovacuum_enabled", True) else " (autovacuum is disabled for this table)"
        findings.append(
            Finding(
                "dead_tuples",
                severity,
                f"{dead} dead tuples, {ratio:.1f}% of the table{autovac}",
                f"VACUUM (ANALYZE) {_pg_quoted(table)}; in database {table.get('database')}; "
                "make sure autovacuum runs for it (ALTER TABLE ... RESET (autovacuum_enabled)) and is not "
                "held back by long transactions.",
                object=_pg_table_name(table),
                value=rounded(ratio),
                threshold=t[f"dead_tuples_{severity}_percent"],
            )
        )
    return result_of(findings)


def _pg_stale_statistics(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    findings = []
    for table in facts.get("all_tables") or facts.get("tables") or []:
        changes = table.get("mod_since_analyze") or 0
        live = table.get("live_tuples") or 0
        if changes < t["stale_statistics_min_changes"]:
            continue
        if changes < live * t["stale_statistics_percent"] / 100.0:
            continue
        last = table.get("last_analyze") or table.get("last_autoanalyze")
        findings.append(
            Finding(
                "stale_statistics",
                WARNING,
                f"{changes} rows changed since the last analyze ({last or 'never analyzed'})",
                f"ANALYZE {_pg_quoted(table)}; in database {table.get('database')}; "
                "check autovacuum settings.",
                object=_pg_table_name(table),
                value=changes,
                threshold=t["stale_statistics_min_changes"],
            )
        )
    return result_of(findings)


def _pg_unused_indexes(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    findings = []
    server = facts.get("server") or {}
    young = []
    for index in facts.get("unused_indexes") or []:
        since = index.get("stats_reset") or server.get("started_at")
        observed = observed_seconds(since, server.get("collected_at"))
        if observed is not None and observed < t["unused_index_min_observation_seconds"]:
            young.append(observed)
            continue
        size = index.get("size_bytes") or 0
        if size < t["unused_index_min_bytes"]:
            continue
        since = index.get("stats_reset")
        findings.append(
            Finding(
                "unused_indexes",
                WARNING,
                f"index never used since {since or 'statistics were last reset'}, {human_bytes(size)}",
                "Confirm no replica or monthly job uses it, then DROP INDEX CONCURRENTLY "
                f'"{index.get("schema")}"."{index.get("name")}"; in database {index.get("database")}.',
                object=f"{index.get('database')}.{index.get('schema')}.{index.get('name')}",
                value=size,
                threshold=t["unused_index_min_bytes"],
            )
        )
    if young and not findings:
        return not_enough_data(max(young), t["unused_index_min_observation_seconds"]) or result_of(findings)
    return result_of(findings)


def _pg_index_usage(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    findings = []
    for table in facts.get("all_tables") or facts.get("tables") or []:
        seq, idx = table.get("seq_scan") or 0, table.get("idx_scan") or 0
        if (table.get("live_tuples") or 0) < t["index_usage_min_rows"]:
            continue
        if seq + idx < t["index_usage_min_scans"]:
            continue
        usage = table.get("index_usage_percent")
        if usage is None or usage >= t["index_usage_min_percent"]:
            continue
        findings.append(
            Finding(
                "index_usage",
                WARNING,
                f"only {usage:.1f}% of {seq + idx} scans use an index on {table.get('live_tuples')} rows "
                f"({seq} sequential scans)",
                "Find the queries that scan it (pg_stat_statements, auto_explain) and add an index on their "
                "filter columns.",
                object=_pg_table_name(table),
                value=rounded(usage),
                threshold=t["index_usage_min_percent"],
            )
        )
    return result_of(findings)


def _pg_slow_queries(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    statements = facts.get("statements") or {}
    if not statements.get("available"):
        reason = statements.get("reason") or "pg_stat_statements is not available"
        return CheckResult(
            SKIPPED,
            [
                Finding(
                    "slow_queries",
                    INFO,
                    f"slow query statistics unavailable: {reason}",
                    "Add pg_stat_statements to shared_preload_libraries (restart), then CREATE EXTENSION "
                    "pg_stat_statements; in the database the monitor logs into.",
                )
            ],
            reason=reason,
        )
    findings = []
    for stmt in statements.get("slow") or []:
        if (stmt.get("calls") or 0) < t["slow_query_min_calls"]:
            continue
        mean = stmt.get("mean_ms")
        severity = classify(mean, t["slow_query_warning_ms"], t["slow_query_critical_ms"])
        if severity == OK:
            continue
        query = " ".join(str(stmt.get("query") or "").split())
        if len(query) > 80:
            query = query[:77] + "..."
        findings.append(
            Finding(
                "slow_queries",
                severity,
                f"mean {mean:.1f} ms over {stmt.get('calls')} calls: {query}",
                "EXPLAIN (ANALYZE, BUFFERS) the statement; add the missing index or rewrite it.",
                object=f"queryid {stmt.get('queryid')}",
                value=rounded(mean),
                threshold=t[f"slow_query_{severity}_ms"],
            )
        )
    return result_of(findings)


def _pg_replication_lag(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    replication = facts.get("replication") or {}
    items = []
    for replica in replication.get("replicas") or []:
        items.append(
            {
                "name": replica.get("application_name") or replica.get("client_addr"),
                "lag": replica.get("replay_lag_seconds") or 0.0,
            }
        )
    standby = replication.get("standby") or {}
    if replication.get("role") == "standby" and standby.get("replay_lag_seconds") is not None:
        items.append({"name": "this standby", "lag": standby["replay_lag_seconds"]})
    if not items:
        return CheckResult(SKIPPED, reason="no replication (no standbys connected, not a standby)")
    return duration_findings(
        "replication_lag",
        items,
        "lag",
        (t["replication_lag_warning_seconds"], t["replication_lag_critical_seconds"]),
        describe=lambda i: (str(i["name"]), f"replay lag {human_seconds(i['lag'])}"),
        fix=lambda i: (
            "Check the standby's disk and network, long queries on the standby "
            "(max_standby_streaming_delay) and wal_receiver status."
        ),
    )


def _pg_replication_slots(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    slots = (facts.get("replication") or {}).get("slots") or []
    if not slots:
        return CheckResult(SKIPPED, reason="no replication slots")
    findings = []
    for slot in slots:
        retained = slot.get("retained_bytes") or 0
        severity = classify(retained, t["slot_retained_warning_bytes"], t["slot_retained_critical_bytes"])
        if slot.get("active") and severity == OK:
            continue
        if not slot.get("active") and severity == OK:
            severity = WARNING
        state = "active" if slot.get("active") else "inactive"
        findings.append(
            Finding(
                "replication_slots",
                severity,
                f"{state} slot retains {human_bytes(retained)} of WAL",
                "Reconnect its consumer, or drop it with SELECT "
                f"pg_drop_replication_slot('{slot.get('slot_name')}'); if it is abandoned; "
                "set max_slot_wal_keep_size.",
                object=str(slot.get("slot_name")),
                value=retained,
                threshold=t[f"slot_retained_{severity}_bytes"],
            )
        )
    return result_of(findings)


def _pg_standby_streaming(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    """A standby that does not stream: on the primary a connected standby in another state than
    ``streaming`` (startup, catchup, backup, stopping); on a standby its WAL receiver not streaming
    (none: it replays archived WAL only or cannot reach its primary)."""
    replication = facts.get("replication") or {}
    findings = []
    for replica in replication.get("replicas") or []:
        state = replica.get("state")
        if state in (None, "streaming", "backup"):  # None: the login may not read it; backup: pg_basebackup
            continue
        name = replica.get("application_name") or replica.get("client_addr")
        findings.append(Finding(
            "standby_streaming", WARNING, f"standby {name} is {state}, not streaming",
            "Wait for catch-up; if it stays, check the standby's log, its disk and the network to it.",
            object=str(name), value=state))
    standby = replication.get("standby") or {}
    if replication.get("role") == "standby" and "wal_receiver_status" in standby:
        status = standby.get("wal_receiver_status")
        if status not in ("streaming", "hidden"):  # hidden: the login may not read pg_stat_wal_receiver
            findings.append(Finding(
                "standby_streaming", CRITICAL,
                f"this standby's WAL receiver is {status or 'not running'}, not streaming from its primary",
                "Check primary_conninfo, the replication login and pg_hba on the primary, and that the "
                "primary's slot exists (pg_replication_slots); the standby's log says why it stopped.",
                object="this standby", value=status))
    if not replication.get("replicas") and replication.get("role") != "standby":
        return CheckResult(SKIPPED, reason="no replication (no standbys connected, not a standby)")
    return result_of(findings)


def _pg_xid(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    findings = []
    for db in facts.get("databases") or []:
        age = db.get("xid_age")
        severity = classify(age, t["xid_age_warning"], t["xid_age_critical"])
        if severity == OK:
            continue
        findings.append(
            Finding(
                "xid_wraparound",
                severity,
                f"oldest unfrozen transaction ID is {age} transactions old",
                f"VACUUM (FREEZE, VERBOSE) the oldest tables in {db.get('name')}; "
                "look for long transactions, "
                "prepared transactions and stale replication slots that hold back the xmin horizon.",
                object=str(db.get("name")),
                value=age,
                threshold=t[f"xid_age_{severity}"],
            )
        )
    return result_of(findings)


def _pg_wal_archiving(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    """WAL archiving (pg_stat_archiver): critical while the last failure is newer than the last
    success (archive_command keeps failing: point-in-time recovery stops at the last archived
    segment and WAL piles up in pg_wal); a warning when it recovered but failed within
    ``archive_failure_recent_seconds`` (failed_count rising: intermittent failures)."""
    archiver = facts.get("archiver")
    if not archiver:
        return CheckResult(SKIPPED, reason="pg_stat_archiver not read")
    if archiver.get("archive_mode") == "off":
        return CheckResult(SKIPPED, reason="archive_mode is off")
    failed_ago = archiver.get("last_failed_seconds_ago")
    archived_ago = archiver.get("last_archived_seconds_ago")
    failed_count = archiver.get("failed_count") or 0
    if failed_ago is None or not failed_count:
        return CheckResult(OK)
    fix = ("Read the server log for the archive_command's error and run "
           "`pgbackrest --stanza=<stanza> check`; fix the repository (space, network, passphrase) - "
           "PostgreSQL retries the segment by itself.")
    if archived_ago is None or failed_ago < archived_ago:
        last_ok = (f"last success {human_seconds(archived_ago)} ago" if archived_ago is not None
                   else "never archived")
        return result_of([Finding(
            "wal_archiving", CRITICAL,
            f"archiving WAL fails: segment {archiver.get('last_failed_wal')} failed "
            f"{human_seconds(failed_ago)} ago ({last_ok}; {failed_count} failures since the statistics "
            "reset)",
            fix, object="archive_command", value=failed_count)])
    if failed_ago <= t["archive_failure_recent_seconds"]:
        return result_of([Finding(
            "wal_archiving", WARNING,
            f"archiving WAL failed {human_seconds(failed_ago)} ago "
            f"(segment {archiver.get('last_failed_wal')}) and recovered; {failed_count} failures since "
            "the statistics reset",
            fix, object="archive_command", value=failed_count,
            threshold=t["archive_failure_recent_seconds"])])
    return CheckResult(OK)


PG_CHECKS: list[Check] = [
    Check(
        "connections",
        "Connections in use",
        10,
        connections_check(
            "allowed",
            "Put a pooler (PgBouncer) in front of the applications or lower their pool sizes; look for idle "
            "clients in pg_stat_activity before raising max_connections.",
        ),
    ),
    Check("cache_hit_ratio", "Buffer cache hit ratio", 10, _pg_cache),
    Check("long_running_queries", "Long-running queries", 10, _pg_long_queries),
    Check("idle_in_transaction", "Sessions idle in transaction", 5, _pg_idle_in_transaction),
    Check("lock_waits", "Sessions waiting on locks", 10, _pg_lock_waits),
    Check("dead_tuples", "Dead tuples (vacuum)", 10, _pg_dead_tuples),
    Check("stale_statistics", "Stale planner statistics (analyze)", 5, _pg_stale_statistics),
    Check("unused_indexes", "Unused indexes", 5, _pg_unused_indexes),
    Check("index_usage", "Sequential scans on large tables", 5, _pg_index_usage),
    Check("slow_queries", "Slow queries (pg_stat_statements)", 5, _pg_slow_queries),
    Check("replication_lag", "Replication lag", 5, _pg_replication_lag),
    Check("replication_slots", "Replication slots retaining WAL", 5, _pg_replication_slots),
    Check("standby_streaming", "Standbys streaming", 5, _pg_standby_streaming),
    Check("xid_wraparound", "Transaction ID wraparound", 5, _pg_xid),
    Check("wal_archiving", "WAL archiving (pg_stat_archiver)", 5, _pg_wal_archiving),
]


def evaluate_pg(facts: dict[str, Any], thresholds: dict[str, Any] | None = None) -> dict[str, Any]:
    return evaluate(PG_CHECKS, facts, merge_thresholds(PG_THRESHOLDS, thresholds))


# ---------------------------------------------------------------------------------------------
# Replicated clusters across hosts (status.yml, health.yml: the pg_clusters filter)
# ---------------------------------------------------------------------------------------------

SLOT_NAME_MAX = 63  # NAMEDATALEN - 1: PostgreSQL refuses longer replication slot names


def member_name(inventory_name: str) -> str:
    """The name a member of a replicated cluster goes by on its primary: its physical replication
    slot and the application_name its WAL receiver reports (both set by the postgresql role).

    The inventory name, lowercased, with anything outside ``[a-z0-9_]`` (the characters PostgreSQL
    allows in a slot name) replaced by ``_``. Used by the role (the ``pg_member_name`` filter) and by
    :func:`pg_clusters`, so both agree on it.
    """
    return re.sub(r"[^a-z0-9_]", "_", inventory_name.lower())


def checked_member_name(inventory_name: str) -> str:
    """:func:`member_name`, or a DbopsError when PostgreSQL could not take it as a slot name."""
    if not inventory_name:
        raise DbopsError("an empty inventory name names no replication slot")
    name = member_name(inventory_name)
    if len(name.encode()) > SLOT_NAME_MAX:
        raise DbopsError(f"{inventory_name}: its replication slot name {name} is {len(name.encode())} bytes"
                         f" long; PostgreSQL allows at most {SLOT_NAME_MAX} (use a shorter inventory name"
                         " or alias)")
    return name


def pg_clusters(nodes: dict[str, dict[str, Any]], max_retained_bytes: int) -> dict[str, Any]:
    """Group PostgreSQL nodes into clusters from what each node said about itself.

    ``nodes``: inventory name -> the ``replication`` facts of ``pg_health_info`` on that node.
    Every primary with standbys or slots is one cluster: its standbys (state, lag in bytes and
    seconds), its slots (active, retained WAL) and the findings: a standby not streaming, a slot
    retaining more than ``max_retained_bytes``, an inactive slot, a standby no primary shows as
    connected, a standby whose WAL receiver is not streaming.
    """
    clusters: list[dict[str, Any]] = []
    findings: list[str] = []
    connected: set[str] = set()
    for name, repl in sorted(nodes.items()):
        if (repl or {}).get("role") != "primary" or not (repl.get("replicas") or repl.get("slots")):
            continue
        cluster: dict[str, Any] = {"primary": name, "standbys": [], "slots": [], "findings": []}
        for replica in repl.get("replicas") or []:
            app = replica.get("application_name")
            connected.add(app)
            cluster["standbys"].append({
                "name": app, "client_addr": replica.get("client_addr"), "state": replica.get("state"),
                "lag_bytes": replica.get("lag_bytes"),
                "lag_seconds": replica.get("replay_lag_seconds") or 0})
            if replica.get("state") != "streaming":
                cluster["findings"].append(f"standby {app} is {replica.get('state')}, not streaming")
        for slot in repl.get("slots") or []:
            retained = int(slot.get("retained_bytes") or 0)
            cluster["slots"].append({"name": slot.get("slot_name"), "active": bool(slot.get("active")),
                                     "retained_bytes": retained})
            if retained > max_retained_bytes:
                cluster["findings"].append(
                    f"slot {slot.get('slot_name')} retains more than {max_retained_bytes} bytes of WAL")
            if not slot.get("active"):
                cluster["findings"].append(
                    f"slot {slot.get('slot_name')} is inactive (no standby streams from it)")
        clusters.append(cluster)
    for name, repl in sorted(nodes.items()):
        if (repl or {}).get("role") != "standby":
            continue
        standby = repl.get("standby") or {}
        if member_name(name) not in connected:
            findings.append(f"{name} is a standby that no primary of this play shows as connected (replayed "
                            f"{standby.get('replay_lag_seconds', '?')} s behind)")
        status = standby.get("wal_receiver_status", "streaming")
        if status not in ("streaming", "hidden"):
            findings.append(f"{name}: WAL receiver is {status or 'not running'}, not streaming")
    return {"clusters": clusters, "findings": findings + [f for c in clusters for f in c["findings"]],
            "lines": cluster_lines(clusters, findings)}


def cluster_lines(clusters: list[dict[str, Any]], findings: list[str]) -> list[str]:
    """The clusters on a screen (status.yml, health.yml)."""
    lines = []
    for cluster in clusters:
        lines.append(f"PostgreSQL cluster of {cluster['primary']} (primary): "
                     f"{len(cluster['standbys'])} standby(s) connected")
        for s in cluster["standbys"]:
            lines.append(f"  standby {s['name']} ({s['client_addr']}): {s['state']}, "
                         f"lag {s['lag_bytes']} bytes / {s['lag_seconds']} s")
        for slot in cluster["slots"]:
            lines.append(f"  slot {slot['name']}: {'active' if slot['active'] else 'inactive'}, "
                         f"retains {slot['retained_bytes']} bytes of WAL")
        lines += [f"  FINDING: {f}" for f in cluster["findings"]]
    return lines + [f"FINDING: {f}" for f in findings]
