"""mongodb_schema against the MongoDB-wire test server (or a real mongod), through ansible-playbook.

Where the test server differs from mongod the test names the difference from
``tests.harness.mongo.KNOWN_DIFFERENCES``; the module always does what is right on mongod.
"""

from __future__ import annotations

import json
from pathlib import Path

import pymongo.errors
import pytest
import yaml

from tests.harness.mongo import KNOWN_DIFFERENCES

REPO = Path(__file__).resolve().parents[3]
SEED = yaml.safe_load((REPO / "tests" / "fixtures" / "mongodb" / "octopus_schema.yml").read_text())
SEED_TTLS = {  # seed 000: hot 7 d, warm 30 d, cold 1 y, alerts 90 d, logs 7/30 d
    "messages": 7 * 86400,
    "messages_archive": 30 * 86400,
    "messages_cold_archive": 365 * 86400,
    "ai_classifier_metrics": 30 * 86400,
    "service_performance_logs": 30 * 86400,
    "cache_performance_logs": 7 * 86400,
    "platform_message_logs": 30 * 86400,
    "crm_operation_logs": 30 * 86400,
    "system_health_logs": 7 * 86400,
    "alert_events": 90 * 86400,
}


def schema_args(server, database, **kw):
    return {**server.params(), "database": database, **kw}


def indexes(server, database, collection):
    with server.client() as client:
        return {i["name"]: i for i in client[database][collection].list_indexes()}


def names(server, database):
    with server.client() as client:
        return {c["name"]: c.get("type") for c in client[database].list_collections()}


def ok(result):
    assert result.get("failed") is not True, result
    return result


def test_seed_schema_check_apply_idempotent_verify(ansible, any_mongo):
    db = any_mongo.database_name("octopus")
    args = schema_args(
        any_mongo, db, collections=SEED["octopus_mongodb_collections"], views=SEED["octopus_mongodb_views"]
    )

    planned = ok(ansible.module("mongodb_schema", args, check=True, diff=True))
    assert planned["changed"] is True
    # 10 x (create + createIndexes) + 4 views
    assert len(planned["commands"]) == 24
    assert [c.get("create") for c in planned["commands"][-4:]] == [
        v["name"] for v in SEED["octopus_mongodb_views"]
    ]
    assert len(planned["diff"]) == 14 and planned["diff"][0]["before"] is None
    assert names(any_mongo, db) == {}, "check mode wrote to the server"

    applied = ok(ansible.module("mongodb_schema", args))
    assert applied["changed"] is True
    assert applied["commands"] == planned["commands"]

    again = ok(ansible.module("mongodb_schema", args))
    assert again["changed"] is False
    assert again["commands"] == []

    live = names(any_mongo, db)
    assert {n for n, t in live.items() if t == "collection"} == set(SEED_TTLS)
    assert {n for n, t in live.items() if t == "view"} == {v["name"] for v in SEED["octopus_mongodb_views"]}
    for collection, ttl in SEED_TTLS.items():
        ttl_indexes = [i for i in indexes(any_mongo, db, collection).values() if "expireAfterSeconds" in i]
        assert [i["expireAfterSeconds"] for i in ttl_indexes] == [ttl], collection
    compound = indexes(any_mongo, db, "ai_classifier_metrics")["classifier_1_timestamp_-1_metrics.success_1"]
    assert list(compound["key"].items()) == [("classifier", 1), ("timestamp", -1), ("metrics.success", 1)]
    assert indexes(any_mongo, db, "alert_events")["alertId_1"]["unique"] is True
    with any_mongo.client() as client:
        info = client[db].command("listCollections", filter={"name": "messages"})["cursor"]["firstBatch"][0]
        assert info["options"]["validationLevel"] == "moderate"
        client[db].crm_operation_logs.insert_many(
            [
                {"crmName": "hubspot", "success": True, "responseTime": 10},
                {"crmName": "hubspot", "success": False, "responseTime": 30},
            ]
        )
        summary = list(client[db].crm_performance_summary.find())
    assert summary == [{"_id": "hubspot", "operations": 2, "failures": 1, "avgResponseMs": 20.0}]


def test_playbook_example_applies_seed_schema(ansible, mongo_server):
    db = mongo_server.database_name("octopus")
    extra = {
        "octopus_mongodb_database": db,
        "mongodb_login_host": mongo_server.host,
        "mongodb_login_port": mongo_server.port,
    }
    run = ansible.playbook(REPO / "playbooks" / "examples" / "mongodb_schema_octopus.yml", extra_vars=extra)
    assert run.rc == 0, run.stdout + run.stderr
    assert run.task_results()[0]["changed"] is True
    rerun = ansible.playbook(REPO / "playbooks" / "examples" / "mongodb_schema_octopus.yml", extra_vars=extra)
    assert rerun.rc == 0 and rerun.task_results()[0]["changed"] is False
    assert len(names(mongo_server, db)) == 14


def test_changed_ttl_is_reconciled_in_place(ansible, any_mongo):
    db = any_mongo.database_name()
    with any_mongo.client() as client:
        client[db].events.create_index([("createdAt", 1)], expireAfterSeconds=3600)
        client[db].events.insert_one({"createdAt": 1})
    args = schema_args(
        any_mongo,
        db,
        collections=[
            {"name": "events", "indexes": [{"keys": {"createdAt": 1}, "expire_after_seconds": 7200}]}
        ],
    )

    planned = ok(ansible.module("mongodb_schema", args, check=True, diff=True))
    assert planned["changed"] is True
    assert planned["commands"] == [
        {"collMod": "events", "index": {"name": "createdAt_1", "expireAfterSeconds": 7200}}
    ]
    assert planned["diff"][0]["before"]["indexes"][0]["expireAfterSeconds"] == 3600
    assert planned["diff"][0]["after"]["indexes"][0]["expireAfterSeconds"] == 7200
    assert indexes(any_mongo, db, "events")["createdAt_1"]["expireAfterSeconds"] == 3600

    applied = ok(ansible.module("mongodb_schema", args))
    assert applied["changed"] is True and applied["rebuilt"] == []
    assert ok(ansible.module("mongodb_schema", args))["changed"] is False
    assert indexes(any_mongo, db, "events")["createdAt_1"]["expireAfterSeconds"] == 7200


def test_unique_change_refused_without_allow_rebuild(ansible, any_mongo):
    db = any_mongo.database_name()
    with any_mongo.client() as client:
        client[db].users.create_index([("email", 1)])
    declared = [{"name": "users", "indexes": [{"keys": {"email": 1}, "unique": True}]}]

    refused = ansible.module("mongodb_schema", schema_args(any_mongo, db, collections=declared))
    assert refused["failed"] is True
    assert "index email_1: unique live False, declared True" in refused["msg"]
    assert "allow_rebuild: true" in refused["msg"]
    assert refused["commands"] == []
    assert "unique" not in indexes(any_mongo, db, "users")["email_1"]

    args = schema_args(any_mongo, db, collections=declared, allow_rebuild=True)
    planned = ok(ansible.module("mongodb_schema", args, check=True))
    assert planned["commands"] == [
        {"dropIndexes": "users", "index": "email_1"},
        {"createIndexes": "users", "indexes": [{"key": {"email": 1}, "name": "email_1", "unique": True}]},
    ]
    assert "unique" not in indexes(any_mongo, db, "users")["email_1"]
    applied = ok(ansible.module("mongodb_schema", args))
    assert applied["changed"] is True and applied["rebuilt"] == ["users.email_1"]
    assert ok(ansible.module("mongodb_schema", args))["changed"] is False
    assert indexes(any_mongo, db, "users")["email_1"]["unique"] is True


def test_key_order_is_respected(ansible, any_mongo):
    db = any_mongo.database_name()
    declared = [
        {
            "name": "logs",
            "indexes": [
                {"keys": [["timestamp", -1], ["tenantId", 1]]},  # list of pairs
                {"keys": {"zone": 1, "level": -1, "app": 1}},  # mapping, kept as written
            ],
        }
    ]
    args = schema_args(any_mongo, db, collections=declared)
    planned = ok(ansible.module("mongodb_schema", args, check=True))
    assert [i["name"] for i in planned["commands"][1]["indexes"]] == [
        "timestamp_-1_tenantId_1",
        "zone_1_level_-1_app_1",
    ]
    assert names(any_mongo, db) == {}
    assert ok(ansible.module("mongodb_schema", args))["changed"] is True
    assert ok(ansible.module("mongodb_schema", args))["changed"] is False
    live = indexes(any_mongo, db, "logs")
    assert list(live["timestamp_-1_tenantId_1"]["key"].items()) == [("timestamp", -1), ("tenantId", 1)]
    assert list(live["zone_1_level_-1_app_1"]["key"].items()) == [("zone", 1), ("level", -1), ("app", 1)]

    # The same fields in another order under the same name is a different index.
    swapped = [
        {
            "name": "logs",
            "indexes": [{"keys": [["tenantId", 1], ["timestamp", -1]], "name": "timestamp_-1_tenantId_1"}],
        }
    ]
    refused = ansible.module("mongodb_schema", schema_args(any_mongo, db, collections=swapped))
    assert refused["failed"] is True
    assert (
        "key live [['timestamp', -1], ['tenantId', 1]], declared [['tenantId', 1], ['timestamp', -1]]"
        in refused["msg"]
    )


def test_validator_is_enforced_after_apply(ansible, any_mongo):
    db = any_mongo.database_name()
    with any_mongo.client() as client:
        client[db].create_collection("orders")
    declared = [
        {
            "name": "orders",
            "validator": {"$jsonSchema": {"bsonType": "object", "required": ["total"]}},
            "validation_level": "strict",
            "validation_action": "error",
        }
    ]
    args = schema_args(any_mongo, db, collections=declared)
    planned = ok(ansible.module("mongodb_schema", args, check=True))
    assert planned["commands"] == [
        {"collMod": "orders", "validator": {"$jsonSchema": {"bsonType": "object", "required": ["total"]}}}
    ]
    with any_mongo.client() as client:
        client[db].orders.insert_one({"note": "accepted before apply"})
    assert ok(ansible.module("mongodb_schema", args))["changed"] is True
    assert ok(ansible.module("mongodb_schema", args))["changed"] is False
    with any_mongo.client() as client:
        with pytest.raises(pymongo.errors.WriteError, match="Document failed validation"):
            client[db].orders.insert_one({"note": "no total"})
        client[db].orders.insert_one({"total": 5})


def test_view_recreated_when_pipeline_changes(ansible, any_mongo):
    db = any_mongo.database_name()
    with any_mongo.client() as client:
        client[db].alerts.insert_many([{"severity": "high"}, {"severity": "low"}, {"severity": "high"}])
    first = [{"name": "open_alerts", "view_on": "alerts", "pipeline": [{"$match": {"severity": "low"}}]}]
    ok(ansible.module("mongodb_schema", schema_args(any_mongo, db, views=first)))
    changed = [{"name": "open_alerts", "view_on": "alerts", "pipeline": [{"$match": {"severity": "high"}}]}]
    args = schema_args(any_mongo, db, views=changed)

    planned = ok(ansible.module("mongodb_schema", args, check=True, diff=True))
    # Drop + create, never collMod: right on mongod, and KNOWN_DIFFERENCES["view_collmod"] means the
    # test server would answer ok to a collMod without changing the view.
    assert "view_collmod" in KNOWN_DIFFERENCES
    assert planned["commands"] == [
        {"drop": "open_alerts"},
        {"create": "open_alerts", "viewOn": "alerts", "pipeline": [{"$match": {"severity": "high"}}]},
    ]
    assert planned["diff"][0]["before"]["pipeline"] == [{"$match": {"severity": "low"}}]
    with any_mongo.client() as client:
        assert client[db].open_alerts.count_documents({}) == 1
    assert ok(ansible.module("mongodb_schema", args))["changed"] is True
    assert ok(ansible.module("mongodb_schema", args))["changed"] is False
    with any_mongo.client() as client:
        assert client[db].open_alerts.count_documents({}) == 2


def test_hidden_flag_goes_through_collmod(ansible, mongo_server):
    db = mongo_server.database_name()
    with mongo_server.client() as client:
        client[db].m.create_index([("a", 1)])
    args = schema_args(
        mongo_server, db, collections=[{"name": "m", "indexes": [{"keys": {"a": 1}, "hidden": True}]}]
    )
    planned = ok(ansible.module("mongodb_schema", args, check=True))
    assert planned["commands"] == [{"collMod": "m", "index": {"name": "a_1", "hidden": True}}]
    applied = ok(ansible.module("mongodb_schema", args))
    assert applied["changed"] is True and applied["commands"] == planned["commands"]
    hidden = indexes(mongo_server, db, "m")["a_1"].get("hidden", False)
    if not mongo_server.external:
        # KNOWN_DIFFERENCES["collmod_index_hidden"]: the test server ignores collMod's hidden flag.
        assert "collmod_index_hidden" in KNOWN_DIFFERENCES
        assert hidden is False
        return
    assert hidden is True
    assert ok(ansible.module("mongodb_schema", args))["changed"] is False


def test_purge_indexes_and_absent_objects(ansible, mongo_server):
    db = mongo_server.database_name()
    with mongo_server.client() as client:
        client[db].m.create_index([("a", 1)])
        client[db].m.create_index([("b", 1)])
        client[db].old.insert_one({})
        client[db].command("create", "old_view", viewOn="m", pipeline=[])
    args = schema_args(
        mongo_server,
        db,
        purge_indexes=True,
        collections=[{"name": "m", "indexes": [{"keys": {"a": 1}}]}, {"name": "old", "state": "absent"}],
        views=[{"name": "old_view", "state": "absent"}],
    )
    planned = ok(ansible.module("mongodb_schema", args, check=True))
    assert planned["commands"] == [
        {"drop": "old_view"},
        {"drop": "old"},
        {"dropIndexes": "m", "index": "b_1"},
    ]
    assert ok(ansible.module("mongodb_schema", args))["changed"] is True
    assert ok(ansible.module("mongodb_schema", args))["changed"] is False
    assert set(indexes(mongo_server, db, "m")) == {"_id_", "a_1"}
    assert names(mongo_server, db) == {"m": "collection"}


BAD_INPUTS = {
    "unknown option": (
        {"collections": [{"name": "good"}, {"name": "c", "indexes": [{"keys": {"a": 1}, "uniq": True}]}]},
        "Unsupported parameters",
    ),
    "key direction 2": (
        {"collections": [{"name": "good"}, {"name": "c", "indexes": [{"keys": {"a": 2}}]}]},
        "key direction 2 for field a is not valid",
    ),
    "TTL on compound index": (
        {
            "collections": [
                {"name": "good"},
                {"name": "c", "indexes": [{"keys": {"a": 1, "b": 1}, "expire_after_seconds": 5}]},
            ]
        },
        "expire_after_seconds (TTL) needs a single-field index",
    ),
    "view over missing collection": (
        {"collections": [{"name": "good"}], "views": [{"name": "v", "view_on": "missing", "pipeline": []}]},
        "view_on missing is neither declared here nor an existing collection or view",
    ),
}


@pytest.mark.parametrize("server_fixture", ["mongo_server", "mongo_auth_server"])
def test_bad_input_fails_clearly_and_changes_nothing(ansible, request, server_fixture):
    server = request.getfixturevalue(server_fixture)
    db = server.database_name()
    tasks = [
        {
            "name": label,
            "dbops.datastores.mongodb_schema": {**server.params(), "database": db, **args},
            "register": "r",
            "ignore_errors": True,
        }
        for label, (args, _message) in BAD_INPUTS.items()
    ]
    playbook = ansible.workdir / "bad_inputs.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    run = ansible.playbook(playbook)
    results = {r["_task"]: r for r in run.task_results()}
    for label, (_args, message) in BAD_INPUTS.items():
        assert results[label]["failed"] is True, label
        assert message in results[label]["msg"], (label, results[label]["msg"])
        assert "Traceback" not in results[label]["msg"]
    assert names(server, db) == {}, "a refused declaration changed the server"


def test_partial_apply_after_an_error_resumes_on_the_next_run(ansible, any_mongo):
    db = any_mongo.database_name()
    with any_mongo.client() as client:
        client[db].users.insert_many([{"email": "a@example.com"}, {"email": "a@example.com"}])
    declared = [
        {"name": "sessions", "indexes": [{"keys": {"lastSeen": 1}, "expire_after_seconds": 3600}]},
        {"name": "users", "indexes": [{"keys": {"email": 1}, "unique": True}]},
        {"name": "audit"},
    ]
    args = schema_args(any_mongo, db, collections=declared)
    failed = ansible.module("mongodb_schema", args)
    assert failed["failed"] is True
    assert "apply schema to" in failed["msg"] and "createIndexes users failed" in failed["msg"]
    assert "E11000" in failed["msg"] and "(2 of 4 commands ran before it)" in failed["msg"]
    assert failed["changed"] is True
    assert failed["commands"] == [
        {"create": "sessions"},
        {
            "createIndexes": "sessions",
            "indexes": [{"key": {"lastSeen": 1}, "name": "lastSeen_1", "expireAfterSeconds": 3600}],
        },
    ]
    assert names(any_mongo, db) == {"sessions": "collection", "users": "collection"}

    with any_mongo.client() as client:  # the operator removes the duplicate
        client[db].users.delete_one({"email": "a@example.com"})
    planned = ok(ansible.module("mongodb_schema", args, check=True))
    assert planned["commands"] == [
        {"createIndexes": "users", "indexes": [{"key": {"email": 1}, "name": "email_1", "unique": True}]},
        {"create": "audit"},
    ]
    assert ok(ansible.module("mongodb_schema", args))["changed"] is True
    assert ok(ansible.module("mongodb_schema", args))["changed"] is False
    assert indexes(any_mongo, db, "users")["email_1"]["unique"] is True
    assert indexes(any_mongo, db, "sessions")["lastSeen_1"]["expireAfterSeconds"] == 3600


def test_hashed_and_text_indexes_are_planned_as_mongod_expects(ansible, mongo_server):
    db = mongo_server.database_name()
    declared = [
        {"name": "messages", "indexes": [{"keys": {"tenantId": "hashed"}}, {"keys": [["content", "text"]]}]}
    ]
    args = schema_args(mongo_server, db, collections=declared)
    planned = ok(ansible.module("mongodb_schema", args, check=True))
    assert planned["commands"][1] == {
        "createIndexes": "messages",
        "indexes": [
            {"key": {"tenantId": "hashed"}, "name": "tenantId_hashed"},
            {"key": {"content": "text"}, "name": "content_text"},
        ],
    }
    applied = ansible.module("mongodb_schema", args)
    if not mongo_server.external:
        # KNOWN_DIFFERENCES["text_hashed_indexes"]: the test server refuses both index types, and
        # the module reports the refused command and what ran before it.
        assert "text_hashed_indexes" in KNOWN_DIFFERENCES
        assert applied["failed"] is True
        assert "createIndexes messages failed" in applied["msg"] and "not supported" in applied["msg"]
        assert applied["commands"] == [{"create": "messages"}]
        return
    assert ok(applied)["changed"] is True
    # mongod stores a text index as {_fts, _ftsx} + weights; the module still sees it as declared.
    assert ok(ansible.module("mongodb_schema", args))["changed"] is False
