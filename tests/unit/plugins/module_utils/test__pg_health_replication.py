"""Replication findings: the standby_streaming check on one node, the pg_clusters view across
nodes (status.yml, health.yml) and the replication metrics (no server needed)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.dbops.datastores.plugins.filter.pg_clusters import pg_clusters as pg_clusters_filter
from ansible_collections.dbops.datastores.plugins.module_utils import _health_metrics, _metrics
from ansible_collections.dbops.datastores.plugins.module_utils import _pg_health_checks as checks

STREAMING = {"application_name": "pg2", "client_addr": "10.0.0.2/32", "state": "streaming",
             "replay_lag_seconds": 0.5, "lag_bytes": 120}
PRIMARY = {"role": "primary", "standby": None,
           "replicas": [STREAMING, {**STREAMING, "application_name": "pg3", "client_addr": "10.0.0.3/32",
                                    "state": "catchup", "replay_lag_seconds": 40.0, "lag_bytes": 9_000_000}],
           "slots": [{"slot_name": "pg2", "active": True, "retained_bytes": 120},
                     {"slot_name": "pg3", "active": True, "retained_bytes": 9_000_000},
                     {"slot_name": "old", "active": False, "retained_bytes": 3_000_000_000}]}


def standby(status="streaming", lag=0.0):
    return {"role": "standby", "replicas": [], "slots": [],
            "standby": {"replay_lag_seconds": lag, "lag_bytes": 0, "wal_receiver_status": status}}


def run_check(replication):
    return checks._pg_standby_streaming({"replication": replication}, checks.PG_THRESHOLDS)


def test_a_connected_standby_that_is_not_streaming_is_a_warning():
    result = run_check(PRIMARY)
    assert [(f.severity, f.object, f.message) for f in result.findings] == [
        ("warning", "pg3", "standby pg3 is catchup, not streaming")]
    # A base backup in progress and a login that cannot read the state are no findings.
    others = [{**STREAMING, "state": "backup"}, {**STREAMING, "state": None}]
    quiet = {**PRIMARY, "replicas": [STREAMING, *others]}
    assert run_check(quiet).findings == []


@pytest.mark.parametrize(("status", "message"), [
    (None, "this standby's WAL receiver is not running, not streaming from its primary"),
    ("waiting", "this standby's WAL receiver is waiting, not streaming from its primary"),
])
def test_a_standby_whose_receiver_does_not_stream_is_critical(status, message):
    result = run_check(standby(status))
    assert [(f.severity, f.message) for f in result.findings] == [("critical", message)]
    assert run_check(standby("streaming")).findings == []
    # A login without pg_read_all_stats sees the receiver's row but not its status: no finding.
    assert run_check(standby("hidden")).findings == []
    assert checks.pg_clusters({"pg2": standby("hidden")}, 10)["findings"] == [
        "pg2 is a standby that no primary of this play shows as connected (replayed 0.0 s behind)"]


def test_no_replication_skips_the_check():
    assert run_check({"role": "primary", "replicas": [], "slots": []}).status == "skipped"
    assert run_check(None).status == "skipped"


def test_the_check_counts_in_the_score():
    report = checks.evaluate_pg({"replication": standby(None)})
    entry = next(c for c in report["checks"] if c["id"] == "standby_streaming")
    assert entry["status"] == "critical"
    assert sum(c.weight for c in checks.PG_CHECKS) == 100


def test_the_cluster_view_from_what_each_node_said():
    # Inventory names in any order; pg-4 is a standby no primary shows connected, and its receiver stopped.
    view = checks.pg_clusters({"pg-4": standby(None, lag=12.0), "pg2": standby(), "pg3": standby(),
                               "pg1": PRIMARY}, max_retained_bytes=1_000_000_000)
    assert [c["primary"] for c in view["clusters"]] == ["pg1"]
    cluster = view["clusters"][0]
    assert [(s["name"], s["state"], s["lag_bytes"], s["lag_seconds"]) for s in cluster["standbys"]] == [
        ("pg2", "streaming", 120, 0.5), ("pg3", "catchup", 9_000_000, 40.0)]
    assert cluster["findings"] == [
        "standby pg3 is catchup, not streaming",
        "slot old retains more than 1000000000 bytes of WAL",
        "slot old is inactive (no standby streams from it)",
    ]
    assert view["findings"][:2] == [
        "pg-4 is a standby that no primary of this play shows as connected (replayed 12.0 s behind)",
        "pg-4: WAL receiver is not running, not streaming",
    ]
    assert view["lines"][:3] == [
        "PostgreSQL cluster of pg1 (primary): 2 standby(s) connected",
        "  standby pg2 (10.0.0.2/32): streaming, lag 120 bytes / 0.5 s",
        "  standby pg3 (10.0.0.3/32): catchup, lag 9000000 bytes / 40.0 s",
    ]
    assert "  slot old: inactive, retains 3000000000 bytes of WAL" in view["lines"]
    assert view["lines"][-1] == "FINDING: pg-4: WAL receiver is not running, not streaming"


def test_the_standby_name_matches_the_role_application_name():
    assert checks.member_name("PG-Prod.2") == "pg_prod_2"
    primary = {**PRIMARY, "replicas": [{**STREAMING, "application_name": "pg_prod_2"}], "slots": []}
    view = checks.pg_clusters({"PG-Prod.1": primary, "PG-Prod.2": standby()}, 10)
    assert view["findings"] == []


def test_the_filter_refuses_bad_input():
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="expected a mapping"):
        pg_clusters_filter(["pg1"])
    with pytest.raises(AnsibleFilterError, match="max_retained_bytes must be an integer"):
        pg_clusters_filter({}, "1 GiB")
    assert pg_clusters_filter({"pg1": PRIMARY}, "100")["clusters"][0]["primary"] == "pg1"


def _samples(metrics):
    text = _metrics.render(metrics)
    return {(s.name, tuple(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_replication_bytes_metrics():
    got = _samples(_health_metrics.health_metrics("postgresql", {"replication": PRIMARY},
                                                  checks.evaluate_pg({"replication": PRIMARY}), 1.0))
    pg = (("engine", "postgresql"),)
    assert got[("dbops_health_replication_lag_bytes", pg)] == 9_000_000
    assert got[("dbops_health_slot_retained_bytes", pg)] == 3_000_000_000
    none = _samples(_health_metrics.health_metrics("postgresql", {"replication": {"role": "primary"}},
                                                   checks.evaluate_pg({}), 1.0))
    assert ("dbops_health_slot_retained_bytes", pg) not in none
    assert ("dbops_health_replication_lag_bytes", pg) not in none
