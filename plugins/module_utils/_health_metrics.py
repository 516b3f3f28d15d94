# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health facts and scores as Prometheus metrics (``dbops-backup health``, docs/monitoring.md).

Pure: :func:`health_metrics` turns what ``pg_health_info`` / ``mongodb_health_info`` compute into
metric families. Labels carry only the engine, check ids and replica member names: never query
text, literal values or database object names. A figure the server does not report has no sample
(``not reported``), never 0; ratios are 0-1 (Prometheus base units), durations seconds.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils._metrics import Metric

STATUS_VALUE = {"ok": 0, "info": 0, "warning": 1, "critical": 2}


def _ratio(percent: Any) -> float | None:
    return None if percent is None else float(percent) / 100.0


def _families() -> dict[str, Metric]:
    items = [
        ("dbops_health_up", "1 when the health facts were gathered, 0 when the server could not be read."),
        ("dbops_health_last_run_timestamp_seconds", "When the health run ended."),
        ("dbops_health_score", "Health score, 0-100 (no sample when no check could be evaluated)."),
        ("dbops_health_status", "Worst finding: 0 ok, 1 warning, 2 critical."),
        ("dbops_health_check_status", "Status of each evaluated check: 0 ok, 1 warning, 2 critical."),
        ("dbops_health_check_skipped",
         "1 for a check that was not evaluated (not reported, not enough data)."),
        ("dbops_health_check_findings", "Findings of each check (info findings not counted)."),
        ("dbops_health_connections_used", "Client connections in use."),
        ("dbops_health_connections_max", "Connection limit (no sample when the server does not report it)."),
        ("dbops_health_connections_used_ratio",
         "Connections in use / limit, 0-1 (no sample when not reported)."),
        ("dbops_health_cache_hit_ratio", "PostgreSQL buffer cache hit ratio, 0-1."),
        ("dbops_health_cache_used_ratio", "MongoDB WiredTiger cache used / configured maximum, 0-1."),
        ("dbops_health_replication_lag_seconds",
         "Replication lag of the most lagging replica (or this standby)."),
        ("dbops_health_replication_lag_bytes",
         "PostgreSQL WAL not yet replayed by the most lagging standby (or by this standby)."),
        ("dbops_health_slot_retained_bytes",
         "WAL retained by the PostgreSQL replication slot that retains most."),
        ("dbops_health_long_running_queries",
         "Client queries/operations running longer than the warning limit."),
        ("dbops_health_idle_in_transaction_sessions",
         "Sessions idle in transaction longer than the warning limit."),
        ("dbops_health_blocked_sessions", "Sessions waiting on a lock."),
        ("dbops_health_dead_tuples_ratio", "Highest dead tuple ratio of a table, 0-1."),
        ("dbops_health_xid_age", "Age of the oldest unfrozen transaction ID of any database."),
        ("dbops_health_size_bytes", "Size of the databases."),
        ("dbops_health_replica_members_unhealthy",
         "MongoDB replica set members not PRIMARY/SECONDARY/ARBITER."),
        ("dbops_health_standby_streaming", "1 when this PostgreSQL standby's WAL receiver is streaming."),
        ("dbops_health_wal_archive_failed_count", "WAL segments that failed to archive since stats reset."),
        ("dbops_health_wal_archive_last_success_timestamp_seconds", "When a WAL segment was last archived."),
        ("dbops_health_wal_archive_last_failure_timestamp_seconds", "When WAL archiving last failed."),
    ]
    return {name: Metric(name, text) for name, text in items}


def _pg_figures(m: dict[str, Metric], facts: dict[str, Any], labels: dict[str, str]) -> None:
    cache = facts.get("cache") or {}
    m["dbops_health_cache_hit_ratio"].add(_ratio(cache.get("hit_ratio_percent")), **labels)
    replication = facts.get("replication") or {}
    lags = [r.get("replay_lag_seconds") for r in replication.get("replicas") or []]
    lags.append((replication.get("standby") or {}).get("replay_lag_seconds"))
    lags = [float(v) for v in lags if v is not None]
    m["dbops_health_replication_lag_seconds"].add(max(lags) if lags else None, **labels)
    _pg_replication_bytes(m, replication, labels)
    activity = facts.get("activity") or {}
    if "activity" in facts:
        m["dbops_health_long_running_queries"].add(len(activity.get("long_running") or []), **labels)
        idle = activity.get("idle_in_transaction") or []
        m["dbops_health_idle_in_transaction_sessions"].add(len(idle), **labels)
    if "locks" in facts:
        m["dbops_health_blocked_sessions"].add(len((facts.get("locks") or {}).get("blocked") or []), **labels)
    ratios = [t.get("dead_ratio_percent") for t in facts.get("all_tables") or facts.get("tables") or []]
    ratios = [r for r in ratios if r is not None]
    m["dbops_health_dead_tuples_ratio"].add(_ratio(max(ratios)) if ratios else None, **labels)
    ages = [d.get("xid_age") for d in facts.get("databases") or [] if d.get("xid_age") is not None]
    m["dbops_health_xid_age"].add(max(ages) if ages else None, **labels)
    extra = facts.get("wal") or {}
    m["dbops_health_standby_streaming"].add(extra.get("standby_streaming"), **labels)
    m["dbops_health_wal_archive_failed_count"].add(extra.get("archive_failed_count"), **labels)
    for when in ("success", "failure"):
        name = f"dbops_health_wal_archive_last_{when}_timestamp_seconds"
        m[name].add(extra.get(f"archive_last_{when}"), **labels)


def _pg_replication_bytes(m: dict[str, Metric], replication: dict[str, Any], labels: dict[str, str]) -> None:
    """Replication lag in bytes and the WAL the slots retain (no sample without replication)."""
    lags = [r.get("lag_bytes") for r in replication.get("replicas") or []]
    lags.append((replication.get("standby") or {}).get("lag_bytes"))
    lags = [int(v) for v in lags if v is not None]
    m["dbops_health_replication_lag_bytes"].add(max(lags) if lags else None, **labels)
    retained = [int(slot["retained_bytes"]) for slot in replication.get("slots") or []
                if slot.get("retained_bytes") is not None]
    m["dbops_health_slot_retained_bytes"].add(max(retained) if retained else None, **labels)


def _mongo_figures(m: dict[str, Metric], facts: dict[str, Any], labels: dict[str, str]) -> None:
    cache = facts.get("cache") or {}
    m["dbops_health_cache_used_ratio"].add(_ratio(cache.get("used_percent")), **labels)
    members = (facts.get("replication") or {}).get("members") or []
    lags = [float(x["lag_seconds"]) for x in members if x.get("lag_seconds") is not None]
    m["dbops_health_replication_lag_seconds"].add(max(lags) if lags else None, **labels)
    if members:
        unhealthy = [x for x in members if not x.get("health", 1)
                     or x.get("state_str") not in ("PRIMARY", "SECONDARY", "ARBITER")]
        m["dbops_health_replica_members_unhealthy"].add(len(unhealthy), **labels)
    if facts.get("long_operations") is not None:
        m["dbops_health_long_running_queries"].add(len(facts["long_operations"]), **labels)


def health_metrics(engine: str, facts: dict[str, Any] | None, report: dict[str, Any] | None,
                   now: float) -> list[Metric]:
    """Metric families for one engine's health run; ``facts`` None means the server was not read."""
    m = _families()
    labels = {"engine": engine}
    m["dbops_health_last_run_timestamp_seconds"].add(now, **labels)
    m["dbops_health_up"].add(facts is not None and report is not None, **labels)
    if facts is None or report is None:
        return list(m.values())
    m["dbops_health_score"].add(report.get("score"), **labels)
    m["dbops_health_status"].add(STATUS_VALUE.get(report.get("status"), 0), **labels)
    for check in report.get("checks") or []:
        check_labels = {**labels, "check": str(check["id"])}
        if check.get("status") == "skipped":
            m["dbops_health_check_skipped"].add(1, **check_labels)
            continue
        m["dbops_health_check_status"].add(STATUS_VALUE.get(check.get("status"), 0), **check_labels)
        m["dbops_health_check_findings"].add(check.get("findings", 0), **check_labels)
    conn = facts.get("connections") or {}
    m["dbops_health_connections_used"].add(conn.get("current"), **labels)
    if conn.get("usage_percent") is not None:
        m["dbops_health_connections_max"].add(conn.get("max"), **labels)
        m["dbops_health_connections_used_ratio"].add(_ratio(conn["usage_percent"]), **labels)
    m["dbops_health_size_bytes"].add(facts.get("size_bytes"), **labels)
    if engine == "postgresql":
        _pg_figures(m, facts, labels)
    else:
        _mongo_figures(m, facts, labels)
    return list(m.values())
