"""Pure helpers of mongodb_health_info: absent sections stay absent, lag, long operations."""

from __future__ import annotations

import datetime

from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb_health


def test_thin_server_status_leaves_sections_absent():
    facts = _mongodb_health.server_facts(
        {"version": "8.2.11", "connections": {"current": 3, "available": 97}, "opcounters": {"insert": 1}}
    )
    assert facts["absent"] == ["mem", "network", "wiredTiger", "globalLock", "asserts"]
    assert facts["cache"] is None
    assert facts["operations"] == {}
    assert facts["memory_mb"] is None
    assert facts["connections"] == {"current": 3, "available": 97, "max": 100, "usage_percent": 3.0}


def test_wiredtiger_cache_and_queues_when_reported():
    facts = _mongodb_health.server_facts(
        {
            "wiredTiger": {
                "cache": {
                    "maximum bytes configured": 1000,
                    "bytes currently in the cache": 920,
                    "tracked dirty bytes in the cache": 50,
                }
            },
            "globalLock": {"currentQueue": {"total": 4, "readers": 3, "writers": 1}},
        }
    )
    assert facts["cache"] == {
        "bytes": 920,
        "dirty_bytes": 50,
        "max_bytes": 1000,
        "used_percent": 92.0,
        "dirty_percent": 5.0,
    }
    assert facts["operations"] == {"queued": 4}
    assert facts["connections"] is None


def test_replication_lag_is_measured_against_the_primary():
    t0 = datetime.datetime(2026, 11, 24, 12, 0, 0)
    status = {
        "set": "rs0",
        "myState": 1,
        "members": [
            {"name": "a", "stateStr": "PRIMARY", "health": 1, "optimeDate": t0, "self": True},
            {
                "name": "b",
                "stateStr": "SECONDARY",
                "health": 1,
                "optimeDate": t0 - datetime.timedelta(seconds=42),
            },
            {"name": "c", "stateStr": "ARBITER", "health": 1},
        ],
    }
    repl = _mongodb_health.replication_facts(status)
    assert [(m["name"], m["lag_seconds"]) for m in repl["members"]] == [("a", None), ("b", 42.0), ("c", None)]
    assert _mongodb_health.replication_facts(None) is None


def test_long_operations_skip_internal_threads_and_the_current_op_itself():
    inprog = [
        {
            "active": True,
            "client": "10.0.0.5:5000",
            "op": "query",
            "ns": "app.big",
            "opid": 1,
            "microsecs_running": 75_500_000,
            "command": {"find": "big"},
        },
        {
            "active": True,
            "client": "10.0.0.6:5000",
            "op": "command",
            "opid": 2,
            "secs_running": 90,
            "command": {"currentOp": 1},
        },
        {"active": True, "op": "none", "desc": "WTCheckpointThread", "opid": 3, "secs_running": 999},
        {
            "active": True,
            "client": "10.0.0.7:5000",
            "op": "getmore",
            "ns": "local.oplog.rs",
            "opid": 4,
            "secs_running": 500,
            "command": {"getMore": 1},
        },
        {
            "active": True,
            "client": "10.0.0.8:5000",
            "op": "update",
            "ns": "app.x",
            "opid": 5,
            "secs_running": 2,
        },
        {"active": False, "client": "10.0.0.9:5000", "op": "query", "opid": 6, "secs_running": 800},
    ]
    ops = _mongodb_health.long_operations(inprog, 60)
    assert [(o["opid"], o["secs_running"]) for o in ops] == [(1, 75.5)]


def test_zero_available_connections_from_a_non_mongod_server_is_not_reported():
    facts = _mongodb_health.server_facts(
        {"process": "secantus", "connections": {"current": 3, "available": 0, "totalCreated": 9}}
    )
    assert facts["connections"] == {"current": 3, "totalCreated": 9, "available_reported": False}
    # mongod itself at its limit is full, not silent
    full = _mongodb_health.server_facts({"process": "mongod", "connections": {"current": 3, "available": 0}})
    assert full["connections"]["usage_percent"] == 100.0


def test_long_operations_keep_the_command_shape_not_its_values():
    inprog = [{"active": True, "client": "10.0.0.5:5000", "op": "query", "ns": "app.users", "opid": 1,
               "secs_running": 90, "command": {"find": "users", "filter": {"email": "ann@example.org"}}}]
    ops = _mongodb_health.long_operations(inprog, 60)
    assert "ann@example.org" not in ops[0]["command"]
    assert ops[0]["command"] == str({"find": "users", "filter": {"email": "?"}})
