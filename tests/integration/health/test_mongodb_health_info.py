"""mongodb_health_info against the MongoDB test server (or a real mongod via DBOPS_TEST_MONGO_*)."""

from __future__ import annotations

import json
import threading
import uuid

from tests.integration.health.conftest import MONGO_HEALTH_DIFFERENCES


def test_sizes_unused_index_and_long_operations_as_cluster_monitor(ansible, mongo_auth_server):
    db_name = mongo_auth_server.database_name()
    user, password = f"mon_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    stop = threading.Event()
    with mongo_auth_server.client() as client:
        db = client[db_name]
        db.events.insert_many([{"n": i, "kind": i % 10, "pad": "x" * 40} for i in range(20000)])
        db.events.create_index("kind", name="kind_1")
        db.events.create_index("n", name="n_unique", unique=True)
        db.sessions.insert_one({"at": 1})
        db.sessions.create_index("at", name="ttl_at", expireAfterSeconds=3600)
        client.admin.command(
            "createUser",
            user,
            pwd=password,
            roles=[{"role": "clusterMonitor", "db": "admin"}, {"role": "read", "db": db_name}],
        )

        # Threshold 0 reports every running client operation: the test server reports running times
        # as 0 (MONGO_HEALTH_DIFFERENCES["op_running_time_zero"]); on mongod the aggregation qualifies too.
        def busy() -> None:  # keeps an aggregation running while the module looks
            with mongo_auth_server.client() as other:
                while not stop.is_set():
                    list(other[db_name].events.aggregate([{"$match": {"pad": {"$ne": "card-4111"}}},
                                                          {"$group": {"_id": "$pad", "n": {"$sum": 1}}}]))

        workers = [threading.Thread(target=busy, daemon=True) for _n in range(3)]
        for worker in workers:
            worker.start()
        try:
            result = ansible.module(
                "mongodb_health_info",
                mongo_auth_server.params(
                    login_user=user,
                    login_password=password,
                    databases=[db_name],
                    thresholds={"unused_index_min_bytes": 0, "long_operation_warning_seconds": 0,
                                "unused_index_min_observation_seconds": 0},
                ),
                check=True,
            )
        finally:
            stop.set()
            for worker in workers:
                worker.join(30)
        coll_stats = db.command("collStats", "events")
        db_stats = db.command("dbStats")
        client.admin.command("dropUser", user)

    assert result.get("failed") is not True, result
    assert result["changed"] is False
    events = next(c for c in result["collections"] if c["name"] == "events")
    assert events["count"] == coll_stats["count"] == 20000
    assert events["size_bytes"] == coll_stats["size"]
    assert events["index_sizes"]["kind_1"] == coll_stats["indexSizes"]["kind_1"]
    database = result["databases"][0]
    assert database["name"] == db_name and database["objects"] == db_stats["objects"]

    # Only the plain secondary index is unused: _id_, unique and TTL indexes are excluded.
    assert [(u["collection"], u["name"]) for u in result["unused_indexes"]] == [("events", "kind_1")]
    unused = [f for f in result["findings"] if f["check"] == "unused_indexes"]
    assert [f["object"] for f in unused] == [f"{db_name}.events.kind_1"]

    ops = [o for o in result["long_operations"] if o["op"] == "aggregate"]
    assert ops, result["long_operations"]
    assert any(
        f["check"] == "long_operations" and f["object"] == f"opid {ops[0]['opid']}"
        for f in result["findings"]
    )
    assert not any("currentOp" in o["command"] for o in result["long_operations"])
    assert "card-4111" not in json.dumps(result)  # the command's shape only, no values

    checks = {c["id"]: c for c in result["checks"]}
    if "wiredTiger" in result["absent"]:  # MONGO_HEALTH_DIFFERENCES["thin_server_status"]
        assert result["cache"] is None
        assert checks["cache_usage"]["status"] == "skipped"
        assert "wiredTiger" in checks["cache_usage"]["reason"]
    else:
        assert result["cache"]["max_bytes"] > 0
    if "globalLock" in result["absent"]:
        assert "queued" not in result["operations"]
        assert checks["queued_operations"]["status"] == "skipped"
    assert "current" in result["connections"]
    assert result["opcounters"]["insert"] >= 1


def test_absent_sections_are_not_zero_and_score_follows_the_model(ansible, mongo_server):
    result = ansible.module("mongodb_health_info", mongo_server.params())
    assert result.get("failed") is not True, result
    with mongo_server.client() as client:
        status = client.admin.command("serverStatus")
    for section in ("wiredTiger", "globalLock", "asserts"):
        assert (section in result["absent"]) == (section not in status)
    if status["connections"].get("available") == 0 and status.get("process") != "mongod":
        # MONGO_HEALTH_DIFFERENCES["connections_available_zero"]: not reported, never 100 % in use
        assert MONGO_HEALTH_DIFFERENCES["connections_available_zero"]
        assert result["connections"]["available_reported"] is False
        assert "usage_percent" not in result["connections"] and "max" not in result["connections"]
        connections = next(c for c in result["checks"] if c["id"] == "connections")
        assert connections["status"] == "skipped"
    credit = {"ok": 1.0, "warning": 0.5, "critical": 0.0}
    evaluated = [c for c in result["checks"] if c["status"] != "skipped"]
    assert result["score"] == round(
        100 * sum(c["weight"] * credit[c["status"]] for c in evaluated) / sum(c["weight"] for c in evaluated)
    )


def test_refused_login_fails_clearly(ansible, mongo_auth_server):
    result = ansible.module("mongodb_health_info", mongo_auth_server.params(login_password="wrong-pw"))
    assert result["failed"] is True
    assert "authentication failed" in result["msg"].lower()
    assert "(code 18)" in result["msg"]
    assert "wrong-pw" not in result["msg"]
