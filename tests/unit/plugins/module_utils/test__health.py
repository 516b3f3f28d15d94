"""The shared scoring model: classification, weights, skipped checks, findings."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from ansible_collections.dbops.datastores.plugins.module_utils import _health
from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_health_checks as mongo_checks
from ansible_collections.dbops.datastores.plugins.module_utils import _pg_health_checks as pg_checks

REPO = Path(__file__).resolve().parents[4]


def pg_facts(**overrides):
    facts = {
        "connections": {"current": 10, "max": 100, "usage_percent": 10.0},
        "cache": {"blocks_hit": 99_000, "blocks_read": 1_000, "hit_ratio_percent": 99.0},
        "activity": {"long_running": [], "idle_in_transaction": []},
        "locks": {"blocked": []},
        "all_tables": [],
        "unused_indexes": [],
        "statements": {"available": True, "slow": []},
        "replication": {"role": "primary", "replicas": [], "slots": []},
        "databases": [{"name": "app", "xid_age": 1000}],
    }
    facts.update(overrides)
    return facts


def table(**values):
    base = {
        "database": "app",
        "schema": "public",
        "name": "orders",
        "live_tuples": 5000,
        "dead_tuples": 0,
        "dead_ratio_percent": 0.0,
        "mod_since_analyze": 0,
        "seq_scan": 0,
        "idx_scan": 0,
        "index_usage_percent": None,
        "autovacuum_enabled": True,
    }
    base.update(values)
    return base


@pytest.mark.parametrize(
    ("value", "expected"), [(79.9, "ok"), (80, "warning"), (94.9, "warning"), (95, "critical")]
)
def test_classify_higher_is_worse(value, expected):
    assert _health.classify(value, 80, 95) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(99, "ok"), (90, "warning"), (80.1, "warning"), (80, "critical")]
)
def test_classify_lower_is_worse(value, expected):
    assert _health.classify(value, 90, 80, higher_is_worse=False) == expected


def test_healthy_server_scores_100_and_skips_what_does_not_apply():
    report = pg_checks.evaluate_pg(pg_facts())
    assert report["score"] == 100
    assert report["status"] == "ok"
    assert report["findings"] == []
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    assert statuses["replication_lag"] == "skipped"
    assert statuses["replication_slots"] == "skipped"
    assert statuses["cache_hit_ratio"] == "ok"


def test_weights_of_each_engine_sum_to_100():
    assert sum(c.weight for c in pg_checks.PG_CHECKS) == 100
    assert sum(c.weight for c in mongo_checks.MONGODB_CHECKS) == 100
    assert len({c.id for c in pg_checks.PG_CHECKS}) == len(pg_checks.PG_CHECKS)


def test_score_is_weighted_over_evaluated_checks():
    # cache critical (weight 10, credit 0), dead tuples warning (weight 10, credit 0.5);
    # evaluated: every check except the replication checks (weight 15) and WAL archiving (no
    # pg_stat_archiver facts, weight 5) -> 80 points possible.
    facts = pg_facts(
        cache={"blocks_hit": 7000, "blocks_read": 3000, "hit_ratio_percent": 70.0},
        all_tables=[table(dead_tuples=2000, dead_ratio_percent=28.6)],
    )
    report = pg_checks.evaluate_pg(facts)
    assert report["score"] == round(100 * (80 - 10 - 5) / 80)
    assert report["status"] == "critical"
    assert [f["check"] for f in report["findings"]] == ["cache_hit_ratio", "dead_tuples"]
    cache = report["findings"][0]
    assert cache["severity"] == "critical" and cache["value"] == 70.0 and cache["threshold"] == 80
    assert "shared_buffers" in cache["fix"]


def test_thresholds_override_defaults_and_unknown_keys_fail():
    facts = pg_facts(cache={"blocks_hit": 9700, "blocks_read": 300, "hit_ratio_percent": 97.0})
    assert pg_checks.evaluate_pg(facts)["status"] == "ok"
    overrides = {"cache_hit_warning_percent": 99, "cache_hit_critical_percent": None}
    strict = pg_checks.evaluate_pg(facts, overrides)
    assert strict["findings"][0]["severity"] == "warning"
    with pytest.raises(ValueError, match="unknown threshold"):
        pg_checks.evaluate_pg(facts, {"cache_hit_percent": 1})


def test_cache_ratio_needs_enough_activity():
    facts = pg_facts(cache={"blocks_hit": 10, "blocks_read": 90, "hit_ratio_percent": 10.0})
    check = next(c for c in pg_checks.evaluate_pg(facts)["checks"] if c["id"] == "cache_hit_ratio")
    assert check["status"] == "skipped"
    assert "cache_min_blocks" in check["reason"]


def test_dead_tuples_ignore_small_tables_and_mention_disabled_autovacuum():
    facts = pg_facts(
        all_tables=[
            table(name="tiny", dead_tuples=900, dead_ratio_percent=90.0),
            table(name="big", dead_tuples=15000, dead_ratio_percent=75.0, autovacuum_enabled=False),
        ]
    )
    findings = pg_checks.evaluate_pg(facts)["findings"]
    assert [f["object"] for f in findings] == ["app.public.big"]
    assert findings[0]["severity"] == "critical"
    assert "autovacuum is disabled" in findings[0]["message"]
    assert 'VACUUM (ANALYZE) "public"."big"' in findings[0]["fix"]


def test_missing_pg_stat_statements_is_an_info_finding_that_does_not_cost_points():
    facts = pg_facts(statements={"available": False, "reason": "not installed"})
    report = pg_checks.evaluate_pg(facts)
    assert report["score"] == 100
    assert report["status"] == "ok"
    assert report["findings"][0]["severity"] == "info"
    assert "shared_preload_libraries" in report["findings"][0]["fix"]
    slow = next(c for c in report["checks"] if c["id"] == "slow_queries")
    assert slow["status"] == "skipped" and slow["reason"] == "not installed"


def test_slow_long_locks_and_replication_findings():
    facts = pg_facts(
        statements={
            "available": True,
            "slow": [
                {"queryid": "1", "calls": 3, "mean_ms": 150.0, "query": "SELECT pg_sleep($1)"},
                {"queryid": "2", "calls": 3, "mean_ms": 2500.0, "query": "SELECT * FROM big"},
            ],
        },
        activity={
            "long_running": [
                {
                    "pid": 42,
                    "duration_seconds": 400,
                    "user": "app",
                    "database": "app",
                    "query": "SELECT pg_sleep(600)",
                }
            ],
            "idle_in_transaction": [],
        },
        locks={"blocked": [{"pid": 43, "wait_seconds": 6, "blocked_by": [42], "database": "app"}]},
        replication={
            "role": "primary",
            "replicas": [{"application_name": "standby1", "replay_lag_seconds": 45}],
            "slots": [{"slot_name": "old", "active": False, "retained_bytes": 11 * _health.GIB}],
        },
    )
    by_check = {}
    for finding in pg_checks.evaluate_pg(facts)["findings"]:
        by_check.setdefault(finding["check"], []).append(finding)
    assert [f["severity"] for f in by_check["slow_queries"]] == ["critical", "warning"]
    assert by_check["long_running_queries"][0]["severity"] == "critical"
    assert "pg_cancel_backend(42)" in by_check["long_running_queries"][0]["fix"]
    assert by_check["lock_waits"][0]["severity"] == "warning"
    assert "pg_terminate_backend(42)" in by_check["lock_waits"][0]["fix"]
    assert by_check["replication_lag"][0]["object"] == "standby1"
    assert by_check["replication_slots"][0]["severity"] == "critical"


def test_unused_index_and_index_usage_thresholds():
    facts = pg_facts(
        unused_indexes=[
            {"database": "app", "schema": "public", "name": "small", "size_bytes": 8192},
            {"database": "app", "schema": "public", "name": "large", "size_bytes": 2 * _health.MIB},
        ],
        all_tables=[table(live_tuples=50000, seq_scan=900, idx_scan=100, index_usage_percent=10.0)],
    )
    findings = pg_checks.evaluate_pg(facts)["findings"]
    assert [(f["check"], f["object"]) for f in findings] == [
        ("index_usage", "app.public.orders"),
        ("unused_indexes", "app.public.large"),
    ]


def test_mongodb_absent_sections_are_skipped_not_scored():
    facts = {
        "connections": None,
        "cache": None,
        "operations": {},
        "long_operations": [],
        "unused_indexes": [],
        "replication": None,
    }
    report = mongo_checks.evaluate_mongodb(facts)
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    assert statuses == {
        "connections": "skipped",
        "cache_usage": "skipped",
        "long_operations": "ok",
        "queued_operations": "skipped",
        "unused_indexes": "ok",
        "replication_lag": "skipped",
        "replica_members": "skipped",
    }
    assert report["score"] == 100


def test_mongodb_findings():
    facts = {
        "connections": {"current": 90, "max": 100, "usage_percent": 90.0},
        "cache": {"bytes": 96, "max_bytes": 100, "used_percent": 96.0},
        "operations": {"queued": 3},
        "long_operations": [{"opid": 7, "op": "query", "ns": "app.big", "secs_running": 75.0}],
        "unused_indexes": [
            {"database": "app", "collection": "c", "name": "b_1", "size_bytes": 2 * _health.MIB}
        ],
        "replication": {
            "set": "rs0",
            "members": [
                {"name": "a:27017", "state_str": "PRIMARY", "health": 1},
                {"name": "b:27017", "state_str": "SECONDARY", "health": 1, "lag_seconds": 400.0},
                {"name": "c:27017", "state_str": "(not reachable/healthy)", "health": 0},
            ],
        },
    }
    report = mongo_checks.evaluate_mongodb(facts)
    severities = {(f["check"], f["severity"]) for f in report["findings"]}
    assert severities == {
        ("connections", "warning"),
        ("cache_usage", "critical"),
        ("long_operations", "warning"),
        ("unused_indexes", "warning"),
        ("replication_lag", "critical"),
        ("replica_members", "critical"),
    }
    assert "db.killOp(7)" in next(f for f in report["findings"] if f["check"] == "long_operations")["fix"]
    # 20*0.5 + 15*0 + 20*0.5 + 10*1 + 10*0.5 + 15*0 + 10*0 = 35 of 100
    assert report["score"] == 35


def test_no_evaluated_check_gives_no_score():
    report = _health.evaluate(
        mongo_checks.MONGODB_CHECKS[:2],
        {"connections": None, "cache": None},
        dict(mongo_checks.MONGODB_THRESHOLDS),
    )
    assert report["score"] is None


@pytest.mark.parametrize(
    ("module", "defaults"),
    [("pg_health_info", pg_checks.PG_THRESHOLDS), ("mongodb_health_info", mongo_checks.MONGODB_THRESHOLDS)],
)
def test_documented_thresholds_match_the_model(module, defaults):
    source = (REPO / "plugins" / "modules" / f"{module}.py").read_text()
    tree = ast.parse(source)
    doc = next(
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCUMENTATION"
    )
    suboptions = yaml.safe_load(doc)["options"]["thresholds"]["suboptions"]
    spec = _health.threshold_argument_spec(defaults)["options"]
    assert set(suboptions) == set(defaults)
    for key, option in suboptions.items():
        assert option["default"] == spec[key]["default"] == defaults[key], key
        assert option["type"] == spec[key]["type"], key


def test_docs_list_every_check_with_its_weight():
    text = (REPO / "docs" / "health.md").read_text()
    for check in pg_checks.PG_CHECKS + mongo_checks.MONGODB_CHECKS:
        assert f"`{check.id}`" in text, check.id
    for key in list(pg_checks.PG_THRESHOLDS) + list(mongo_checks.MONGODB_THRESHOLDS):
        assert f"`{key}`" in text, key


@pytest.mark.parametrize(("value", "text"), [(512, "512 B"), (1536, "1.5 KiB"), (3 * _health.GIB, "3.0 GiB")])
def test_human_bytes(value, text):
    assert _health.human_bytes(value) == text


def test_unused_indexes_wait_for_the_observation_window():
    index = {"database": "app", "schema": "public", "name": "ix", "size_bytes": 2 * _health.MIB,
             "stats_reset": None}
    server = {"started_at": "2026-11-30T10:00:00+00:00", "collected_at": "2026-11-30T10:20:00+00:00"}
    young = pg_checks.evaluate_pg(pg_facts(server=server, unused_indexes=[index]))
    check = next(c for c in young["checks"] if c["id"] == "unused_indexes")
    assert check["status"] == "skipped" and check["reason"].startswith("not enough data")
    assert not any(f["check"] == "unused_indexes" for f in young["findings"])
    old = dict(server, collected_at="2026-12-08T10:00:00+00:00")
    report = pg_checks.evaluate_pg(pg_facts(server=old, unused_indexes=[index]))
    assert [f["object"] for f in report["findings"] if f["check"] == "unused_indexes"] == ["app.public.ix"]

    mongo_index = {"database": "shop", "collection": "c", "name": "a_1", "since": "2026-11-30T10:00:00+00:00"}
    facts = {"collected_at": "2026-11-30T10:05:00+00:00", "unused_indexes": [mongo_index]}
    check = next(c for c in mongo_checks.evaluate_mongodb(facts)["checks"] if c["id"] == "unused_indexes")
    assert check["status"] == "skipped" and "not enough data" in check["reason"]
    facts["collected_at"] = "2026-12-30T10:05:00+00:00"
    assert mongo_checks.evaluate_mongodb(facts)["findings"][0]["check"] == "unused_indexes"
