"""Health facts as metrics: no sample for what the server does not report, no text in labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.dbops.datastores.plugins.module_utils import _health_metrics, _metrics
from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_health_checks as mongo_checks
from ansible_collections.dbops.datastores.plugins.module_utils import _pg_health_checks as pg_checks


def parse(metrics):
    text = _metrics.render(metrics)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_pg_health_metrics_with_key_figures():
    facts = {
        "connections": {"current": 96, "max": 100, "usage_percent": 96.0},
        "cache": {"blocks_hit": 9000, "blocks_read": 1000, "hit_ratio_percent": 90.0},
        "activity": {"long_running": [{"query": "SELECT $1", "duration_seconds": 500}],
                     "idle_in_transaction": []},
        "locks": {"blocked": []},
        "all_tables": [{"dead_ratio_percent": 12.5}, {"dead_ratio_percent": None}],
        "databases": [{"name": "app", "xid_age": 1200}],
        "replication": {"role": "primary", "replicas": [{"replay_lag_seconds": 4.5}], "slots": []},
        "statements": {"available": False, "reason": "x"},
        "unused_indexes": [],
        "size_bytes": 2048,
        "wal": {"archive_failed_count": 2, "archive_last_success": 100.0, "archive_last_failure": 200.0},
    }
    report = pg_checks.evaluate_pg(facts)
    got = parse(_health_metrics.health_metrics("postgresql", facts, report, 1000.0))
    pg = (("engine", "postgresql"),)
    assert got[("dbops_health_up", pg)] == 1
    assert got[("dbops_health_status", pg)] == 2  # 96 % of connections: critical
    assert got[("dbops_health_score", pg)] == report["score"]
    assert got[("dbops_health_connections_used_ratio", pg)] == 0.96
    assert got[("dbops_health_cache_hit_ratio", pg)] == 0.9
    assert got[("dbops_health_dead_tuples_ratio", pg)] == 0.125
    assert got[("dbops_health_replication_lag_seconds", pg)] == 4.5
    assert got[("dbops_health_long_running_queries", pg)] == 1
    assert got[("dbops_health_wal_archive_failed_count", pg)] == 2
    assert got[("dbops_health_check_status", (("check", "connections"), ("engine", "postgresql")))] == 2
    assert got[("dbops_health_check_skipped", (("check", "slow_queries"), ("engine", "postgresql")))] == 1
    assert ("dbops_health_check_status", (("check", "slow_queries"), ("engine", "postgresql"))) not in got
    labels = {value for (_name, items) in got for (_key, value) in items}
    assert labels <= {"postgresql"} | {c.id for c in pg_checks.PG_CHECKS}  # no query text, no values


def test_not_reported_figures_have_no_sample_and_down_is_zero():
    facts = {"connections": {"current": 3, "available_reported": False}, "cache": None,
             "operations": {}, "long_operations": [], "unused_indexes": [], "replication": None}
    report = mongo_checks.evaluate_mongodb(facts)
    got = parse(_health_metrics.health_metrics("mongodb", facts, report, 1.0))
    mongo = (("engine", "mongodb"),)
    assert got[("dbops_health_connections_used", mongo)] == 3
    for name in ("dbops_health_connections_max", "dbops_health_connections_used_ratio",
                 "dbops_health_cache_used_ratio", "dbops_health_replication_lag_seconds"):
        assert (name, mongo) not in got
    down = parse(_health_metrics.health_metrics("mongodb", None, None, 1.0))
    assert down == {("dbops_health_up", mongo): 0, ("dbops_health_last_run_timestamp_seconds", mongo): 1}
