"""mongodb_migrate verify scripts (V<version>__<desc>.verify.yml) and mode=verify, against a real server."""

from __future__ import annotations

from tests.harness.migrations import write_files as write

V1 = "up:\n  - insert: messages\n    documents: [{_id: 1, storageLevel: hot}, {_id: 2, storageLevel: cold}]\n"
V1_VERIFY = ("verify:\n  - command: {count: messages, query: {storageLevel: {$exists: false}}}\n"
             "    expect: {n: 0}\n  - command: {count: messages}\n    expect: {n: 2}\n")
V2_MISSES = "up:\n  - insert: messages\n    documents: [{_id: 3}]\n"


def history(server, db):
    with server.client() as client:
        rows = client[db]["dbops_schema_history"].find(sort=[("rank", 1)])
        return [(r["version"], r["success"]) for r in rows]


def test_verify_runs_after_the_migration_and_mode_verify_finds_drift(ansible, mongo_server, tmp_path):
    db = mongo_server.database_name()
    path = write(tmp_path / "m", {"V1__messages.yml": V1, "V1__messages.verify.yml": V1_VERIFY})
    args = {**mongo_server.params(), "database": db, "path": str(path)}
    plan = ansible.module("mongodb_migrate", args, check=True)
    assert plan["plan"][0]["verify"] == "V1__messages.verify.yml"
    applied = ansible.module("mongodb_migrate", args)
    assert applied.get("failed") is not True, applied.get("msg")
    assert history(mongo_server, db) == [("1", True)]

    healthy = ansible.module("mongodb_migrate", {**args, "mode": "verify"})
    assert healthy.get("failed") is not True, healthy.get("msg")
    assert healthy["changed"] is False
    assert [(v["verify"], v["ok"]) for v in healthy["verified"]] == [("V1__messages.verify.yml", True)]

    with mongo_server.client() as client:  # someone strips a field by hand
        client[db]["messages"].update_one({"_id": 2}, {"$unset": {"storageLevel": ""}})
    drifted = ansible.module("mongodb_migrate", {**args, "mode": "verify"})
    assert drifted["failed"] is True and drifted["changed"] is False
    assert drifted["msg"] == (
        f"verify migrations of {db}: 1 of 1 verify scripts failed (the live data has drifted from the"
        " migrations): verify script V1__messages.verify.yml failed at check 1: n is 1, expected 0")
    assert history(mongo_server, db) == [("1", True)]


def test_failing_verify_of_a_non_transactional_migration_leaves_it_failed(ansible, mongo_server, tmp_path):
    db = mongo_server.database_name()
    path = write(tmp_path / "m", {"V1__messages.yml": V1, "V2__more.yml": V2_MISSES,
                                  "V2__more.verify.yml": "verify:\n  - command: {count: messages,"
                                                         " query: {storageLevel: {$exists: false}}}\n"
                                                         "    expect: {n: 0}\n"})
    args = {**mongo_server.params(), "database": db, "path": str(path)}
    result = ansible.module("mongodb_migrate", args)
    assert result["failed"] is True
    assert result["msg"].startswith("apply migration V2__more.yml: its verify script failed: verify script"
                                    " V2__more.verify.yml failed at check 1: n is 1, expected 0")
    assert history(mongo_server, db) == [("1", True), ("2", False)]

    with mongo_server.client() as client:  # fixed by hand: the next run only verifies again
        client[db]["messages"].update_one({"_id": 3}, {"$set": {"storageLevel": "hot"}})
    again = ansible.module("mongodb_migrate", args)
    assert again.get("failed") is not True, again.get("msg")
    assert history(mongo_server, db)[-1] == ("2", True)
    with mongo_server.client() as client:
        assert client[db]["messages"].count_documents({}) == 3  # V2's insert did not run twice


def test_orphan_or_malformed_verify_scripts_fail_before_anything_runs(ansible, mongo_server, tmp_path):
    db = mongo_server.database_name()
    orphan = write(tmp_path / "orphan", {"V1__messages.yml": V1, "V4__gone.verify.yml": V1_VERIFY})
    args = {**mongo_server.params(), "database": db}
    result = ansible.module("mongodb_migrate", {**args, "path": str(orphan)})
    assert result["failed"] is True
    assert "V4__gone.verify.yml: verify script for version 4 which has no V4__ migration" in result["msg"]
    bad = write(tmp_path / "bad", {"V1__messages.yml": V1,
                                   "V1__messages.verify.yml": "verify:\n  - count: x\n"})
    result = ansible.module("mongodb_migrate", {**args, "path": str(bad)})
    assert result["failed"] is True
    assert ("read verify script V1__messages.verify.yml: check 1 must have exactly command: and"
            in result["msg"])
    assert history(mongo_server, db) == []
