# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health scoring model shared by ``pg_health_info`` and ``mongodb_health_info``.

Pure functions over the facts the modules gather (no server, no Ansible):

- Each engine has a list of :class:`Check` (id, title, weight). A check looks at the facts and
  returns a :class:`CheckResult`: ``ok``, ``warning``, ``critical`` or ``skipped`` (the server did
  not report what the check needs, or there is nothing to judge, e.g. no replicas), with
  :class:`Finding` items that say what is wrong, on which object, the measured value, the threshold
  and the fix an operator would apply.
- The score is ``100 * sum(weight * credit) / sum(weight)`` over the checks that were evaluated,
  with credit 1 for ``ok``, 0.5 for ``warning`` and 0 for ``critical``; skipped checks do not count
  either way. ``status`` is the worst severity found. ``info`` findings (e.g. "pg_stat_statements is
  not installed") never change the score.
- Thresholds are plain dicts; :data:`PG_THRESHOLDS` / :data:`MONGODB_THRESHOLDS` hold the defaults
  (the modules expose each key as a sub-option of ``thresholds``). docs/health.md documents them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

OK = "ok"
INFO = "info"
WARNING = "warning"
CRITICAL = "critical"
SKIPPED = "skipped"

SEVERITY_RANK = {OK: 0, INFO: 0, WARNING: 1, CRITICAL: 2}
CREDIT = {OK: 1.0, WARNING: 0.5, CRITICAL: 0.0}

GIB = 1024**3
MIB = 1024**2

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
}

# Defaults for mongodb_health_info.
MONGODB_THRESHOLDS: dict[str, float] = {
    "connections_warning_percent": 80,
    "connections_critical_percent": 95,
    "cache_used_warning_percent": 90,
    "cache_used_critical_percent": 95,
    "long_operation_warning_seconds": 60,
    "long_operation_critical_seconds": 300,
    "queued_operations_warning": 10,
    "queued_operations_critical": 50,
    "unused_index_min_bytes": MIB,
    "replication_lag_warning_seconds": 30,
    "replication_lag_critical_seconds": 300,
}


@dataclass
class Finding:
    """One problem found by a check."""

    check: str
    severity: str
    message: str
    fix: str
    object: str | None = None
    value: Any = None
    threshold: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "object": self.object,
            "message": self.message,
            "value": self.value,
            "threshold": self.threshold,
            "fix": self.fix,
        }


@dataclass
class CheckResult:
    """What one check concluded."""

    status: str
    findings: list[Finding] = field(default_factory=list)
    reason: str | None = None


@dataclass(frozen=True)
class Check:
    """A scored check: ``run(facts, thresholds)`` returns its result."""

    id: str
    title: str
    weight: int
    run: Callable[[dict[str, Any], dict[str, float]], CheckResult]


def classify(value: float | None, warning: float, critical: float, higher_is_worse: bool = True) -> str:
    """``ok``/``warning``/``critical`` for ``value`` against two thresholds (inclusive)."""
    if value is None:
        return OK
    if higher_is_worse:
        if value >= critical:
            return CRITICAL
        return WARNING if value >= warning else OK
    if value <= critical:
        return CRITICAL
    return WARNING if value <= warning else OK


def worst(statuses: list[str]) -> str:
    """The most severe of ``statuses`` (``ok`` for an empty list)."""
    result = OK
    for status in statuses:
        if SEVERITY_RANK.get(status, 0) > SEVERITY_RANK[result]:
            result = status
    return result


def merge_thresholds(defaults: dict[str, float], overrides: dict[str, Any] | None) -> dict[str, float]:
    """Defaults with the non-null values of ``overrides`` (module sub-options arrive as None)."""
    merged = dict(defaults)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in defaults:
            raise ValueError(f"unknown threshold {key!r}")
        merged[key] = value
    return merged


def _result(findings: list[Finding]) -> CheckResult:
    return CheckResult(worst([f.severity for f in findings]), findings)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def human_bytes(value: float | None) -> str:
    """``1.5 GiB`` style sizes for messages."""
    if value is None:
        return "n/a"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - loop always returns


def human_seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    seconds = float(value)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


# ---------------------------------------------------------------------------------------------
# Checks shared in shape by both engines
# ---------------------------------------------------------------------------------------------


def _connections(prefix: str, fix: str) -> Callable[[dict[str, Any], dict[str, float]], CheckResult]:
    def run(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
        conn = facts.get("connections") or {}
        usage = conn.get("usage_percent")
        if usage is None:
            return CheckResult(SKIPPED, reason="the server does not report its connection limit")
        severity = classify(usage, t["connections_warning_percent"], t["connections_critical_percent"])
        if severity == OK:
            return CheckResult(OK)
        threshold = t[f"connections_{severity}_percent"]
        return _result(
            [
                Finding(
                    "connections",
                    severity,
                    f"{conn.get('current')} of {conn.get('max')} {prefix} connections in use ({usage:.1f}%)",
                    fix,
                    value=_round(usage),
                    threshold=threshold,
                )
            ]
        )

    return run


Describe = Callable[[dict[str, Any]], "tuple[str, str]"]
Fix = Callable[[dict[str, Any]], str]


def _duration_findings(
    check: str,
    items: list[dict[str, Any]],
    key: str,
    limits: tuple[float, float],
    *,
    describe: Describe,
    fix: Fix,
) -> CheckResult:
    """One finding per item whose ``key`` (seconds) reaches the (warning, critical) ``limits``."""
    warn, crit = limits
    findings = []
    for item in items:
        seconds = item.get(key)
        severity = classify(seconds, warn, crit)
        if severity == OK:
            continue
        obj, message = describe(item)
        findings.append(
            Finding(
                check,
                severity,
                message,
                fix(item),
                object=obj,
                value=_round(seconds),
                threshold=warn if severity == WARNING else crit,
            )
        )
    return _result(findings)


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
    return _result(
        [
            Finding(
                "cache_hit_ratio",
                severity,
                f"buffer cache hit ratio is {ratio:.2f}% (target {t['cache_hit_warning_percent']:g}%)",
                "Raise shared_buffers (about 25% of RAM is the usual start) or reduce the working set: "
                "look for "
                "sequential scans on large tables and missing indexes.",
                value=_round(ratio, 2),
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
    return _duration_findings(
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
    return _duration_findings(
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
    return _duration_findings(
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
                value=_round(ratio),
                threshold=t[f"dead_tuples_{severity}_percent"],
            )
        )
    return _result(findings)


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
    return _result(findings)


def _pg_unused_indexes(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    findings = []
    for index in facts.get("unused_indexes") or []:
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
    return _result(findings)


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
                value=_round(usage),
                threshold=t["index_usage_min_percent"],
            )
        )
    return _result(findings)


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
                value=_round(mean),
                threshold=t[f"slow_query_{severity}_ms"],
            )
        )
    return _result(findings)


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
    return _duration_findings(
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
    return _result(findings)


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
    return _result(findings)


PG_CHECKS: list[Check] = [
    Check(
        "connections",
        "Connections in use",
        10,
        _connections(
            "allowed",
            "Put a pooler (PgBouncer) in front of the applications or lower their pool sizes; look for idle "
            "clients in pg_stat_activity before raising max_connections.",
        ),
    ),
    Check("cache_hit_ratio", "Buffer cache hit ratio", 15, _pg_cache),
    Check("long_running_queries", "Long-running queries", 10, _pg_long_queries),
    Check("idle_in_transaction", "Sessions idle in transaction", 5, _pg_idle_in_transaction),
    Check("lock_waits", "Sessions waiting on locks", 10, _pg_lock_waits),
    Check("dead_tuples", "Dead tuples (vacuum)", 10, _pg_dead_tuples),
    Check("stale_statistics", "Stale planner statistics (analyze)", 5, _pg_stale_statistics),
    Check("unused_indexes", "Unused indexes", 5, _pg_unused_indexes),
    Check("index_usage", "Sequential scans on large tables", 5, _pg_index_usage),
    Check("slow_queries", "Slow queries (pg_stat_statements)", 5, _pg_slow_queries),
    Check("replication_lag", "Replication lag", 10, _pg_replication_lag),
    Check("replication_slots", "Replication slots retaining WAL", 5, _pg_replication_slots),
    Check("xid_wraparound", "Transaction ID wraparound", 5, _pg_xid),
]


# ---------------------------------------------------------------------------------------------
# MongoDB checks
# ---------------------------------------------------------------------------------------------


def _mongo_cache(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    cache = facts.get("cache") or {}
    used = cache.get("used_percent")
    if used is None:
        return CheckResult(SKIPPED, reason="serverStatus does not report wiredTiger.cache")
    severity = classify(used, t["cache_used_warning_percent"], t["cache_used_critical_percent"])
    if severity == OK:
        return CheckResult(OK)
    return _result(
        [
            Finding(
                "cache_usage",
                severity,
                f"WiredTiger cache {used:.1f}% full ({human_bytes(cache.get('bytes'))} of "
                f"{human_bytes(cache.get('max_bytes'))}); application threads start evicting at 95%",
                "Raise storage.wiredTiger.engineConfig.cacheSizeGB (or the host's memory), "
                "or shrink the working "
                "set: add indexes for collection scans, archive cold data.",
                value=_round(used),
                threshold=t[f"cache_used_{severity}_percent"],
            )
        ]
    )


def _mongo_long_operations(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    ops = facts.get("long_operations")
    if ops is None:
        return CheckResult(SKIPPED, reason="currentOp is not available")
    return _duration_findings(
        "long_operations",
        ops,
        "secs_running",
        (t["long_operation_warning_seconds"], t["long_operation_critical_seconds"]),
        describe=lambda i: (
            f"opid {i.get('opid')}",
            f"{i.get('op')} on {i.get('ns') or '?'} running for {human_seconds(i.get('secs_running'))}",
        ),
        fix=lambda i: (
            f"Check it with db.currentOp({{opid: {i.get('opid')!r}}}); stop it with "
            f"db.killOp({i.get('opid')!r}) if it is runaway; set maxTimeMS in the application."
        ),
    )


def _mongo_queues(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    queued = (facts.get("operations") or {}).get("queued")
    if queued is None:
        return CheckResult(SKIPPED, reason="serverStatus does not report globalLock.currentQueue")
    severity = classify(queued, t["queued_operations_warning"], t["queued_operations_critical"])
    if severity == OK:
        return CheckResult(OK)
    return _result(
        [
            Finding(
                "queued_operations",
                severity,
                f"{queued} operations queued waiting for locks",
                "Find the operation holding the lock with db.currentOp({waitingForLock: true}); look for "
                "collection scans and long writes.",
                value=queued,
                threshold=t[f"queued_operations_{severity}"],
            )
        ]
    )


def _mongo_unused_indexes(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    if facts.get("unused_indexes") is None:
        return CheckResult(SKIPPED, reason="$indexStats is not available")
    findings = []
    for index in facts.get("unused_indexes") or []:
        size = index.get("size_bytes")
        if size is not None and size < t["unused_index_min_bytes"]:
            continue
        name = f"{index.get('database')}.{index.get('collection')}"
        findings.append(
            Finding(
                "unused_indexes",
                WARNING,
                f"index {index.get('name')} has no accesses since "
                f"{index.get('since') or 'the server started'}"
                + (f", {human_bytes(size)}" if size is not None else ""),
                f"Confirm on every member, hide it first with db.{index.get('collection')}.hideIndex("
                f"'{index.get('name')}'), then dropIndex if nothing slows down.",
                object=f"{name}.{index.get('name')}",
                value=size,
                threshold=t["unused_index_min_bytes"],
            )
        )
    return _result(findings)


def _mongo_replication_lag(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    repl = facts.get("replication") or {}
    members = [m for m in repl.get("members") or [] if m.get("state_str") == "SECONDARY"]
    if not members:
        return CheckResult(SKIPPED, reason="no secondaries" if repl.get("set") else "not a replica set")
    return _duration_findings(
        "replication_lag",
        members,
        "lag_seconds",
        (t["replication_lag_warning_seconds"], t["replication_lag_critical_seconds"]),
        describe=lambda m: (
            str(m.get("name")),
            f"secondary is {human_seconds(m.get('lag_seconds'))} behind the primary",
        ),
        fix=lambda m: (
            "Check the secondary's disk, network and oplog window "
            "(rs.printSecondaryReplicationInfo()); make sure the oplog covers the lag."
        ),
    )


def _mongo_members(facts: dict[str, Any], t: dict[str, float]) -> CheckResult:
    repl = facts.get("replication") or {}
    if not repl.get("members"):
        return CheckResult(SKIPPED, reason="not a replica set")
    findings = []
    for member in repl["members"]:
        state = member.get("state_str")
        if member.get("health", 1) and state in ("PRIMARY", "SECONDARY", "ARBITER"):
            continue
        findings.append(
            Finding(
                "replica_members",
                CRITICAL,
                f"member is {state} (health {member.get('health')})",
                "Check the member's mongod log and connectivity; "
                "a member in RECOVERING for long needs a resync.",
                object=str(member.get("name")),
                value=state,
            )
        )
    if not any(m.get("state_str") == "PRIMARY" for m in repl["members"]):
        findings.append(
            Finding(
                "replica_members",
                CRITICAL,
                "the replica set has no primary",
                "Check that a majority of voting members are up and can reach each other.",
                object=str(repl.get("set")),
            )
        )
    return _result(findings)


MONGODB_CHECKS: list[Check] = [
    Check(
        "connections",
        "Connections in use",
        20,
        _connections(
            "possible",
            "Lower the drivers' maxPoolSize or add mongos/members; raise net.maxIncomingConnections and the "
            "process file limit only after checking for connection leaks.",
        ),
    ),
    Check("cache_usage", "WiredTiger cache usage", 15, _mongo_cache),
    Check("long_operations", "Long-running operations", 20, _mongo_long_operations),
    Check("queued_operations", "Operations queued on locks", 10, _mongo_queues),
    Check("unused_indexes", "Unused indexes", 10, _mongo_unused_indexes),
    Check("replication_lag", "Replication lag", 15, _mongo_replication_lag),
    Check("replica_members", "Replica set members", 10, _mongo_members),
]


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------


def evaluate(checks: list[Check], facts: dict[str, Any], thresholds: dict[str, float]) -> dict[str, Any]:
    """Run ``checks`` over ``facts``: score, status, per-check results and all findings."""
    results = []
    findings: list[Finding] = []
    earned = 0.0
    possible = 0
    # Checks the server's version cannot evaluate (facts "unavailable_checks": id -> reason).
    unavailable = facts.get("unavailable_checks") or {}
    for check in checks:
        if check.id in unavailable:
            result = CheckResult(SKIPPED, reason=unavailable[check.id])
        else:
            result = check.run(facts, thresholds)
        findings.extend(result.findings)
        if result.status != SKIPPED:
            earned += check.weight * CREDIT[result.status]
            possible += check.weight
        results.append(
            {
                "id": check.id,
                "title": check.title,
                "weight": check.weight,
                "status": result.status,
                "reason": result.reason,
                "findings": len([f for f in result.findings if f.severity != INFO]),
            }
        )
    score = round(100.0 * earned / possible) if possible else None
    findings.sort(key=lambda f: (-SEVERITY_RANK.get(f.severity, 0), f.check, str(f.object)))
    status = worst([f.severity for f in findings])
    return {
        "score": score,
        "status": status,
        "checks": results,
        "findings": [f.to_dict() for f in findings],
    }


def evaluate_pg(facts: dict[str, Any], thresholds: dict[str, Any] | None = None) -> dict[str, Any]:
    return evaluate(PG_CHECKS, facts, merge_thresholds(PG_THRESHOLDS, thresholds))


def evaluate_mongodb(facts: dict[str, Any], thresholds: dict[str, Any] | None = None) -> dict[str, Any]:
    return evaluate(MONGODB_CHECKS, facts, merge_thresholds(MONGODB_THRESHOLDS, thresholds))


def threshold_is_float(key: str) -> bool:
    """Percentages and durations take fractions; counts and byte sizes are integers."""
    return key.endswith(("_percent", "_seconds", "_ms"))


def threshold_argument_spec(defaults: dict[str, float]) -> dict[str, Any]:
    """The ``thresholds`` option: one sub-option per key, typed like its default."""
    options: dict[str, Any] = {}
    for key, value in defaults.items():
        if threshold_is_float(key):
            options[key] = {"type": "float", "default": float(value)}
        else:
            options[key] = {"type": "int", "default": int(value)}
    return {"type": "dict", "default": {}, "options": options}
