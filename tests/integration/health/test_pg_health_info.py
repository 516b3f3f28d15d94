"""pg_health_info against real clusters, with the conditions its checks look for created for real."""

from __future__ import annotations

import json

import pytest

from tests.integration.health.conftest import make_monitor, wait_until

WEIGHT_CREDIT = {"ok": 1.0, "warning": 0.5, "critical": 0.0}


def expected_score(checks):
    evaluated = [c for c in checks if c["status"] != "skipped"]
    earned = sum(c["weight"] * WEIGHT_CREDIT[c["status"]] for c in evaluated)
    return round(100 * earned / sum(c["weight"] for c in evaluated))


def findings_of(result, check, prefix=""):
    return [f for f in result["findings"] if f["check"] == check and str(f["object"]).startswith(prefix)]


@pytest.mark.pg_matrix
def test_conditions_are_found_as_pg_monitor_member(ansible, pg_server, pg_db, pg_monitor, background):
    pg_server.query(
        "CREATE TABLE orders (id int PRIMARY KEY, note text) WITH (autovacuum_enabled = false);"
        "INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 20000) g;"
        "CREATE INDEX orders_note_idx ON orders (note);"
        "DELETE FROM orders WHERE id > 5000;"
        "CREATE TABLE jobs (id int);",
        dbname=pg_db,
    )
    background.wait_until(
        "SELECT coalesce(sum(n_dead_tup), 0) >= 15000 FROM pg_stat_user_tables WHERE relname = 'orders'",
        None,
        dbname=pg_db,
    )
    sleeper = background.session(pg_db)
    background.run(sleeper, "SELECT pg_sleep(120), 'card 4111-1111' AS secret")
    holder = background.session(pg_db)
    with holder.cursor() as cur:
        cur.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")  # stays idle in transaction
    waiter = background.session(pg_db)
    background.run(waiter, "SELECT count(*) FROM jobs")
    background.wait_until(
        "SELECT count(*) = 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'"
        " AND now() - query_start > interval '1.5 seconds'",
        [background.pid(waiter)],
    )
    background.wait_until(
        "SELECT now() - query_start > interval '1.5 seconds' FROM pg_stat_activity WHERE pid = %s",
        [background.pid(sleeper)],
    )

    # An info module runs for real in check mode; the monitor login is only a pg_monitor member.
    result = ansible.module(
        "pg_health_info",
        {
            **pg_monitor,
            "thresholds": {
                "long_query_warning_seconds": 1,
                "idle_in_transaction_warning_seconds": 1,
                "lock_wait_warning_seconds": 1,
                "unused_index_min_bytes": 0,
                "unused_index_min_observation_seconds": 0,
            },
        },
        check=True,
    )
    assert result.get("failed") is not True, result
    assert result["changed"] is False
    assert result["server"]["login_user"] == pg_monitor["login_user"]
    assert pg_db in result["inspected_databases"]

    dead = findings_of(result, "dead_tuples", f"{pg_db}.public.orders")
    assert len(dead) == 1 and dead[0]["severity"] == "critical", result["findings"]
    assert dead[0]["value"] == 75.0
    assert "autovacuum is disabled" in dead[0]["message"]
    assert 'VACUUM (ANALYZE) "public"."orders"' in dead[0]["fix"]
    orders = next(t for t in result["tables"] if t["database"] == pg_db and t["name"] == "orders")
    live, dead_tup, size = pg_server.query(
        "SELECT n_live_tup, n_dead_tup, pg_total_relation_size(relid) FROM pg_stat_user_tables "
        "WHERE relname = 'orders'",
        dbname=pg_db,
    )[0]
    assert (orders["live_tuples"], orders["dead_tuples"], orders["total_bytes"]) == (live, dead_tup, size)
    assert orders["autovacuum_enabled"] is False
    assert orders["last_vacuum"] is None and orders["last_autovacuum"] is None

    unused = findings_of(result, "unused_indexes", f"{pg_db}.public.")
    assert [f["object"] for f in unused] == [f"{pg_db}.public.orders_note_idx"]  # not the primary key
    index_size = pg_server.query("SELECT pg_relation_size('orders_note_idx')", dbname=pg_db)[0][0]
    assert unused[0]["value"] == index_size

    sleeper_pid, holder_pid, waiter_pid = (background.pid(c) for c in (sleeper, holder, waiter))
    long_running = {f["object"]: f for f in findings_of(result, "long_running_queries")}
    assert f"pid {sleeper_pid}" in long_running, result["activity"]
    assert long_running[f"pid {sleeper_pid}"]["severity"] == "warning"
    assert f"pg_cancel_backend({sleeper_pid})" in long_running[f"pid {sleeper_pid}"]["fix"]
    row = next(a for a in result["activity"]["long_running"] if a["pid"] == sleeper_pid)
    # pg_monitor reads other roles' query text; only its shape leaves the module (no literals)
    assert row["query"] == "SELECT pg_sleep($1), $2 AS secret"
    assert "4111" not in json.dumps(result)
    assert f"pid {holder_pid}" in [f["object"] for f in findings_of(result, "idle_in_transaction")]
    blocked = next(b for b in result["locks"]["blocked"] if b["pid"] == waiter_pid)
    assert blocked["blocked_by"] == [holder_pid]
    if pg_server.major >= 14:
        assert blocked["wait_seconds"] >= 1.5
        assert f"pid {waiter_pid}" in [f["object"] for f in findings_of(result, "lock_waits")]
        assert result["unavailable_checks"] == {}
    else:  # 13 does not know when a wait began: no number rather than the query's age
        assert blocked["wait_seconds"] is None
        assert "pg_locks.waitstart is new in 14" in result["unavailable_checks"]["lock_waits"]
        assert findings_of(result, "lock_waits") == []
        lock_check = next(c for c in result["checks"] if c["id"] == "lock_waits")
        assert lock_check["status"] == "skipped"
        assert lock_check["reason"] == result["unavailable_checks"]["lock_waits"]
    assert result["locks"]["waiting"] >= 1

    statements = result["statements"]
    assert statements["available"] is False
    assert "shared_preload_libraries" in statements["reason"]
    info = findings_of(result, "slow_queries")
    assert [f["severity"] for f in info] == ["info"]
    slow_check = next(c for c in result["checks"] if c["id"] == "slow_queries")
    assert slow_check["status"] == "skipped"

    assert result["connections"]["current"] >= 4
    assert result["connections"]["max"] == int(pg_server.query("SHOW max_connections")[0][0])
    assert result["status"] == "critical"
    assert result["score"] == expected_score(result["checks"])
    assert result["score"] < 100


@pytest.mark.pg_matrix
def test_slow_queries_and_migration_version_with_pg_stat_statements(ansible, pg_stats_server):
    db = pg_stats_server.create_database()
    pg_stats_server.query("CREATE EXTENSION pg_stat_statements", dbname=db)
    conn = pg_stats_server.connect(db)
    try:
        with conn.cursor() as cur:
            for _n in range(3):
                cur.execute("SELECT pg_sleep(0.15)")
    finally:
        conn.close()
    pg_stats_server.query(
        "CREATE TABLE dbops_schema_history (installed_rank int, version text, description text, type text,"
        " script text, checksum text, installed_by text, installed_on timestamptz, execution_ms int,"
        " success bool);"
        "INSERT INTO dbops_schema_history VALUES"
        " (1, '1', 'init', 'versioned', 'V1__init.sql', 'a', 'app', now(), 5, true),"
        " (2, '2', 'users', 'versioned', 'V2__users.sql', 'b', 'app', now(), 5, true),"
        " (3, '10', 'orders', 'versioned', 'V10__orders.sql', 'c', 'app', now(), 5, true),"
        " (4, '11', 'bad idea', 'versioned', 'V11__bad_idea.sql', 'd', 'app', now(), 5, true),"
        " (5, '11', 'bad idea', 'undo', 'U11__bad_idea.sql', 'e', 'app', now(), 5, true),"
        " (6, '12', 'broken', 'versioned', 'V12__broken.sql', 'f', 'app', now(), 5, false)",
        dbname=db,
    )
    role, password = make_monitor(pg_stats_server)
    pg_stats_server.query(f"GRANT SELECT ON dbops_schema_history TO {role}", dbname=db)
    try:
        result = ansible.module(
            "pg_health_info", pg_stats_server.params(login_user=role, login_password=password, databases=[db])
        )
    finally:
        pg_stats_server.query(f"REVOKE ALL ON dbops_schema_history FROM {role}", dbname=db)
        pg_stats_server.query(f"DROP ROLE {role}")
    assert result.get("failed") is not True, result
    statements = result["statements"]
    assert statements["available"] is True, statements
    assert statements["database"] == db
    sleep = next(s for s in statements["slow"] if "pg_sleep" in s["query"])
    calls, mean = pg_stats_server.query(
        "SELECT calls, mean_exec_time FROM pg_stat_statements WHERE query LIKE 'SELECT pg_sleep%%'", dbname=db
    )[0]
    assert sleep["calls"] == calls == 3
    assert sleep["mean_ms"] == round(mean, 3)
    assert sleep["mean_ms"] >= 150
    slow = findings_of(result, "slow_queries")
    assert f"queryid {sleep['queryid']}" in [f["object"] for f in slow]
    assert all(f["severity"] in ("warning", "critical") for f in slow)
    assert next(c for c in result["checks"] if c["id"] == "slow_queries")["status"] != "skipped"
    assert result["migrations"] == [
        {
            "database": db,
            "table": "dbops_schema_history",
            "version": "10",
            "description": "orders",
            "installed_on": result["migrations"][0]["installed_on"],
            "applied_count": 3,
            "failed_count": 1,
        }
    ]
    assert result["score"] == expected_score(result["checks"])


def test_extension_created_but_not_preloaded_is_explained(ansible, pg_server, pg_db):
    pg_server.query("CREATE EXTENSION pg_stat_statements", dbname=pg_db)
    result = ansible.module("pg_health_info", pg_server.params(databases=[pg_db]))
    assert result.get("failed") is not True, result
    assert result["statements"]["available"] is False
    assert f"installed in {pg_db} but cannot be read" in result["statements"]["reason"]
    assert "shared_preload_libraries" in result["statements"]["reason"]
    assert result["inspected_databases"] == [pg_db]


def test_unknown_database_fails_clearly(ansible, pg_server):
    result = ansible.module("pg_health_info", pg_server.params(databases=["no_such_db"]))
    assert result["failed"] is True
    assert result["msg"] == "read health facts of database(s) no_such_db: no such database"
    assert "Traceback" not in result.get("module_stderr", "")


def test_wrong_password_and_bad_threshold_fail_clearly(ansible, pg_server):
    result = ansible.module("pg_health_info", pg_server.params(login_password="wrong"))
    assert result["failed"] is True
    assert "password authentication failed" in result["msg"]
    assert "wrong" not in result["msg"]
    result = ansible.module("pg_health_info", pg_server.params(thresholds={"cache_hit_percent": 95}))
    assert result["failed"] is True
    assert "cache_hit_percent" in result["msg"]


@pytest.mark.pg_matrix
def test_replication_seen_from_primary_and_standby(ansible, pg_primary_standby):
    primary, standby = pg_primary_standby
    primary.query(
        "SELECT pg_create_physical_replication_slot('abandoned', true)"
    )  # reserves WAL, no consumer
    try:
        primary.query(
            "CREATE TABLE IF NOT EXISTS ticks (n int); INSERT INTO ticks SELECT generate_series(1, 1000)"
        )
        wait_until(
            primary,
            "SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'standby1'"
            " AND replay_lsn = pg_current_wal_lsn()",
        )
        role, password = make_monitor(primary)  # replicated to the standby as well
        result = ansible.module("pg_health_info", primary.params(login_user=role, login_password=password))
        assert result.get("failed") is not True, result
        replication = result["replication"]
        assert replication["role"] == "primary"
        assert [r["application_name"] for r in replication["replicas"]] == ["standby1"]
        assert replication["replicas"][0]["state"] == "streaming"
        slots = {s["slot_name"]: s for s in replication["slots"]}
        assert slots["standby1"]["active"] is True
        assert slots["abandoned"]["active"] is False
        found = [f for f in result["findings"] if f["check"] == "replication_slots"]
        assert [(f["object"], f["severity"]) for f in found] == [("abandoned", "warning")]
        assert "pg_drop_replication_slot('abandoned')" in found[0]["fix"]
        checks = {c["id"]: c["status"] for c in result["checks"]}
        assert checks["replication_lag"] == "ok"
        assert checks["replication_slots"] == "warning"

        wait_until(standby, "SELECT count(*) = 1 FROM pg_roles WHERE rolname = %s", [role])
        on_standby = ansible.module(
            "pg_health_info", standby.params(login_user=role, login_password=password)
        )
        assert on_standby.get("failed") is not True, on_standby
        assert on_standby["server"]["in_recovery"] is True
        assert on_standby["replication"]["role"] == "standby"
        assert on_standby["replication"]["standby"]["replay_lag_seconds"] is not None
        primary.query(f"DROP ROLE {role}")
    finally:
        primary.query("SELECT pg_drop_replication_slot('abandoned')")
