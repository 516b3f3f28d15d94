"""Pre-flight and post-check modules of migrate.yml against real servers: pg_preflight (sessions that
block DDL), backup_space (refuse before dumping), pg_assert and mongodb_assert (named failures)."""

from __future__ import annotations

import os
import threading
import time

import pytest


def test_pg_preflight_lists_idle_in_transaction_sessions_and_waits_for_them(ansible, pg_server, pg_db):
    pg_server.query("CREATE TABLE messages (id int)", dbname=pg_db)
    quiet = ansible.module("pg_preflight", pg_server.params(login_db=pg_db, session_max_age=0))
    assert quiet.get("failed") is not True, quiet.get("msg")
    assert quiet["changed"] is False and quiet["sessions"] == [] and quiet["size_bytes"] > 0

    holder = pg_server.connect(pg_db, autocommit=False)
    try:
        with holder.cursor() as cur:
            cur.execute("SET application_name = 'nightly report'")
            cur.execute("SELECT count(*) FROM messages")  # holds ACCESS SHARE: ALTER TABLE would wait
        time.sleep(1.2)
        refused = ansible.module("pg_preflight", pg_server.params(login_db=pg_db, session_max_age=1))
        assert refused["failed"] is True
        assert refused["msg"].startswith(f"pre-flight {pg_db}: 1 session(s) with a transaction open longer"
                                         " than 1s"
                                         " would block the migration's DDL (waited 0s)")
        assert "application 'nightly report'" in refused["msg"] and "idle in transaction" in refused["msg"]
        assert [s["application_name"] for s in refused["sessions"]] == ["nightly report"]

        goes_on = ansible.module("pg_preflight", pg_server.params(login_db=pg_db, session_max_age=1,
                                                                  on_sessions="continue"))
        assert goes_on.get("failed") is not True and len(goes_on["sessions"]) == 1

        # The session ends while the pre-flight waits for it: the pre-flight goes on. The holder
        # ends once this pre-flight's first look at the sessions has returned (a backend started
        # after `since`, no longer active, its last query the sessions query); a backend of the
        # runs above may still be listed while it exits, and must not count.
        since = pg_server.query("SELECT clock_timestamp()", dbname=pg_db)[0][0]

        def end_once_seen_waiting():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not pg_server.query(
                    "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%%xact_start > make_interval%%'"
                    " AND state <> 'active' AND backend_start > %s AND pid <> pg_backend_pid()",
                    (since,), dbname=pg_db):
                time.sleep(0.05)
            holder.rollback()

        ender = threading.Thread(target=end_once_seen_waiting, daemon=True)
        ender.start()
        waited = ansible.module("pg_preflight", pg_server.params(login_db=pg_db, session_max_age=1,
                                                                 session_wait=60))
        assert waited.get("failed") is not True, waited.get("msg")
        ender.join(60)
        assert waited["sessions"] == [] and waited["waited_s"] > 0
    finally:
        holder.close()


def test_pg_preflight_bad_input(ansible, pg_server, pg_db):
    result = ansible.module("pg_preflight", pg_server.params(login_db=pg_db, session_wait=-1))
    assert result["failed"] is True
    assert result["msg"] == "check pre-flight options: session_max_age and session_wait cannot be negative"


def test_backup_space_refuses_before_dumping(ansible, tmp_path):
    root = tmp_path / "backups"
    root.mkdir()
    st = os.statvfs(root)
    free = st.f_bavail * st.f_frsize
    fits = ansible.module("backup_space", {"root": str(root), "databases": [
        {"engine": "postgresql", "database": "app", "size_bytes": 1024}]})
    assert fits.get("failed") is not True, fits.get("msg")
    assert fits["needed_bytes"] == int(1024 * 1.0 * 1.2)
    assert fits["estimates"][0]["factor_source"] == "default"

    refused = ansible.module("backup_space", {"root": str(root), "margin": 1.0, "databases": [
        {"engine": "postgresql", "database": "app", "size_bytes": free * 2},
        {"engine": "mongodb", "database": "events", "size_bytes": 10}]})
    assert refused["failed"] is True
    assert refused["msg"].startswith(
        f"check free space for the backup of postgresql:app, mongodb:events: {root} has ")
    assert refused["msg"].endswith("(refusing before dumping)")
    assert list(root.iterdir()) == []


def test_pg_assert_names_each_failed_assertion(ansible, pg_server, pg_db):
    pg_server.query("CREATE TABLE messages (id int, storage_level text);"
                    " INSERT INTO messages VALUES (1, NULL),"
                    " (2, 'hot'); CREATE VIEW hot AS SELECT * FROM messages WHERE storage_level = 'hot'",
                    dbname=pg_db)
    assertions = [
        {"name": "messages present", "sql": "SELECT to_regclass('messages') IS NOT NULL"},
        {"name": "no NULL storage_level",
         "sql": "SELECT NOT EXISTS (SELECT 1 FROM messages WHERE storage_level IS NULL)"},
        {"name": "view answers", "sql": "SELECT count(*) = 1 FROM hot"},
        {"name": "audit_logs present", "sql": "SELECT count(*) > 0 FROM audit_logs"},
        {"name": "cannot write", "sql": "INSERT INTO messages VALUES (3, 'x') RETURNING true"},
    ]
    result = ansible.module("pg_assert", pg_server.params(login_db=pg_db, assertions=assertions))
    assert result["failed"] is True
    assert result["failed_assertions"] == ["no NULL storage_level", "audit_logs present", "cannot write"]
    msg = result["msg"]
    assert msg.startswith(f"assert PostgreSQL database {pg_db}: 3 of 5 assertion(s) failed: "
                          "no NULL storage_level: returned False, expected true; audit_logs present: ERROR:  "
                          'relation "audit_logs" does not exist')
    assert "cannot write: ERROR:  cannot execute INSERT in a read-only transaction" in msg
    assert pg_server.query("SELECT count(*) FROM messages", dbname=pg_db) == [(2,)]

    pg_server.query("UPDATE messages SET storage_level = 'cold' WHERE storage_level IS NULL", dbname=pg_db)
    ok = ansible.module("pg_assert", pg_server.params(login_db=pg_db, assertions=assertions[:3]))
    assert ok.get("failed") is not True, ok.get("msg")
    assert ok["changed"] is False and [a["ok"] for a in ok["assertions"]] == [True, True, True]


@pytest.mark.parametrize("server_fixture", ["mongo_server"])
def test_mongodb_assert_names_each_failed_assertion(ansible, request, server_fixture, mongo_db):
    server = request.getfixturevalue(server_fixture)
    server.client()[mongo_db]["messages"].insert_many([{"_id": 1, "storageLevel": "hot"}, {"_id": 2}])
    assertions = [
        {"name": "two messages", "collection": "messages", "count": 2},
        {"name": "every message has a storage level", "collection": "messages",
         "filter": {"storageLevel": {"$exists": False}}, "count": 0},
    ]
    result = ansible.module("mongodb_assert", server.params(database=mongo_db, assertions=assertions))
    assert result["failed"] is True
    assert result["msg"] == (f"assert MongoDB database {mongo_db}: 1 of 2 assertion(s) failed: every message"
                             " has a"
                             " storage level: counted 1 document(s), expected 0")
    server.client()[mongo_db]["messages"].update_one({"_id": 2}, {"$set": {"storageLevel": "cold"}})
    ok = ansible.module("mongodb_assert", server.params(database=mongo_db, assertions=assertions))
    assert ok.get("failed") is not True, ok.get("msg")
    assert ok["changed"] is False
