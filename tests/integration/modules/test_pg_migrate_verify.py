"""pg_migrate verify scripts, mode=verify (drift) and retries on lock_timeout, against a real cluster."""

from __future__ import annotations

import threading
import time

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_migrate as pm
from tests.harness.migrations import write_files as write

V1 = "CREATE TABLE messages (id bigint PRIMARY KEY, body text NOT NULL);\n"
V1_VERIFY = "SELECT id, body FROM messages WHERE false;\n"
V2 = "CREATE INDEX messages_body_idx ON messages (body);\n"
V2_VERIFY = (
    "-- the index the application's search relies on\n"
    "DO $$BEGIN\n"
    "  ASSERT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'messages_body_idx'),\n"
    "    'index messages_body_idx is missing';\n"
    "END$$;\n"
)


def args(pg_server, db, path, **options):
    return pg_server.params(login_db=db, path=str(path), ssl_mode="disable", **options)


def history(pg_server, db):
    if not pg_server.query("SELECT to_regclass('public.dbops_schema_history') IS NOT NULL", dbname=db)[0][0]:
        return []
    return pg_server.query(
        "SELECT version, script, success FROM dbops_schema_history ORDER BY installed_rank", dbname=db)


def table_exists(pg_server, db, name):
    return pg_server.query("SELECT to_regclass(%s) IS NOT NULL", (name,), dbname=db)[0][0]


def test_verify_scripts_run_with_their_migration(ansible, pg_server, pg_db, tmp_path):
    path = write(tmp_path / "m", {"V1__messages.sql": V1, "V1__messages.verify.sql": V1_VERIFY,
                                  "V2__body_index.sql": V2, "V2__body_index.verify.sql": V2_VERIFY})
    plan = ansible.module("pg_migrate", args(pg_server, pg_db, path), check=True)
    assert plan["changed"] is True
    assert [s.get("verify") for s in plan["plan"]] == ["V1__messages.verify.sql", "V2__body_index.verify.sql"]
    assert "ASSERT EXISTS" in plan["plan"][1]["verify_sql"]
    assert history(pg_server, pg_db) == []

    applied = ansible.module("pg_migrate", args(pg_server, pg_db, path))
    assert applied.get("failed") is not True, applied.get("msg")
    assert applied["changed"] is True and applied["version"] == "2"
    assert [s["verify"] for s in applied["applied"]] == [
        "V1__messages.verify.sql", "V2__body_index.verify.sql"]
    # Verify scripts are not recorded in the history: only the two migrations are.
    assert history(pg_server, pg_db) == [("1", "V1__messages.sql", True), ("2", "V2__body_index.sql", True)]

    again = ansible.module("pg_migrate", args(pg_server, pg_db, path))
    assert again["changed"] is False and again["applied"] == []


def test_failing_verify_rolls_its_migration_back(ansible, pg_server, pg_db, tmp_path):
    path = write(tmp_path / "m", {
        "V1__messages.sql": V1,
        # The migration "forgets" the index its verify script expects.
        "V2__body_index.sql": "CREATE TABLE search_terms (term text);\n",
        "V2__body_index.verify.sql": V2_VERIFY,
    })
    result = ansible.module("pg_migrate", args(pg_server, pg_db, path))
    assert result["failed"] is True
    msg = result["msg"]
    assert "apply migration V2__body_index.sql: verify script V2__body_index.verify.sql failed" in msg
    assert "index messages_body_idx is missing" in msg
    assert "rolled back" in msg
    assert [a["script"] for a in result["applied"]] == ["V1__messages.sql"]
    assert result["version"] == "1"
    # V1 stays applied and recorded; nothing of V2 remains, neither its table nor a history row.
    assert history(pg_server, pg_db) == [("1", "V1__messages.sql", True)]
    assert table_exists(pg_server, pg_db, "messages") is True
    assert table_exists(pg_server, pg_db, "search_terms") is False


def test_failing_verify_after_a_non_transactional_migration_leaves_it_failed(
        ansible, pg_server, pg_db, tmp_path):
    path = write(tmp_path / "m", {
        "V1__messages.sql": V1,
        "V2__body_index.sql": "-- dbops:transaction=off\nCREATE INDEX CONCURRENTLY messages_other_idx"
                              " ON messages (id);\n",
        "V2__body_index.verify.sql": V2_VERIFY,
    })
    result = ansible.module("pg_migrate", args(pg_server, pg_db, path))
    assert result["failed"] is True
    assert ("V2__body_index.sql (transaction=off): verify script V2__body_index.verify.sql failed"
            in result["msg"])
    assert "recorded as failed" in result["msg"]
    assert history(pg_server, pg_db) == [("1", "V1__messages.sql", True), ("2", "V2__body_index.sql", False)]


def test_mode_verify_finds_drift_and_changes_nothing(ansible, pg_server, pg_db, tmp_path):
    path = write(tmp_path / "m", {"V1__messages.sql": V1, "V1__messages.verify.sql": V1_VERIFY,
                                  "V2__body_index.sql": V2, "V2__body_index.verify.sql": V2_VERIFY,
                                  "V3__authors.sql": "ALTER TABLE messages ADD COLUMN author text;\n"})
    pm.migrate(args(pg_server, pg_db, path), check_mode=False)
    before = history(pg_server, pg_db)

    healthy = ansible.module("pg_migrate", args(pg_server, pg_db, path, mode="verify"))
    assert healthy.get("failed") is not True, healthy.get("msg")
    assert healthy["changed"] is False
    assert [(v["verify"], v["ok"]) for v in healthy["verified"]] == [
        ("V1__messages.verify.sql", True), ("V2__body_index.verify.sql", True)]
    assert healthy["unverified"] == ["V3__authors.sql"]

    # Someone drops the index by hand.
    pg_server.query("DROP INDEX messages_body_idx", dbname=pg_db)
    drifted = ansible.module("pg_migrate", args(pg_server, pg_db, path, mode="verify"))
    assert drifted["failed"] is True and drifted["changed"] is False
    assert "1 of 2 verify scripts failed" in drifted["msg"]
    assert "verify script V2__body_index.verify.sql failed at statement 1" in drifted["msg"]
    assert "index messages_body_idx is missing" in drifted["msg"]
    assert [v["ok"] for v in drifted["verified"]] == [True, False]
    assert history(pg_server, pg_db) == before
    assert not pg_server.query("SELECT 1 FROM pg_indexes WHERE indexname = 'messages_body_idx'", dbname=pg_db)


def test_bad_input_fails_before_anything_runs(ansible, pg_server, pg_db, tmp_path):
    orphan = write(tmp_path / "orphan", {"V1__messages.sql": V1, "V7__gone.verify.sql": V1_VERIFY})
    result = ansible.module("pg_migrate", args(pg_server, pg_db, orphan))
    assert result["failed"] is True
    assert "V7__gone.verify.sql: verify script for version 7 which has no V7__ migration" in result["msg"]

    ok = write(tmp_path / "ok", {"V1__messages.sql": V1})
    negative = ansible.module("pg_migrate", args(pg_server, pg_db, ok, lock_retries=-1))
    assert negative["failed"] is True
    assert "check option lock_retries: -1 is negative" in negative["msg"]

    bad_verify = write(tmp_path / "bad", {"V1__messages.sql": V1,
                                          "V1__messages.verify.sql": "-- dbops:transaction=off\nSELECT 1;\n"})
    result = ansible.module("pg_migrate", args(pg_server, pg_db, bad_verify))
    assert result["failed"] is True
    assert "check V1__messages.verify.sql: a verify script takes no dbops: directive" in result["msg"]
    assert history(pg_server, pg_db) == []
    assert table_exists(pg_server, pg_db, "messages") is False


class LockHolder(threading.Thread):
    """Holds ACCESS EXCLUSIVE on a table until the first migration attempt has given up waiting."""

    def __init__(self, pg_server, db, table):
        super().__init__(daemon=True)
        self.conn = pg_server.connect(db)
        self.conn.autocommit = False
        with self.conn.cursor() as cur:
            cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        self.pg_server, self.db = pg_server, db
        self.saw_waiter = False
        self.error: Exception | None = None

    def waiters(self):
        return self.pg_server.query(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE NOT l.granted AND a.datname = %s AND a.application_name LIKE 'dbops pg_migrate%%'",
            (self.db,))[0][0]

    def run(self):
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not self.saw_waiter:
                self.saw_waiter = self.waiters() > 0
                time.sleep(0.05)
            while time.monotonic() < deadline and self.waiters() > 0:
                time.sleep(0.05)
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            self.conn.rollback()
            self.conn.close()


def test_lock_timeout_is_retried_and_other_errors_are_not(ansible, pg_server, pg_db, tmp_path):
    pg_server.query(V1, dbname=pg_db)
    path = write(tmp_path / "m", {"V1__author.sql": "ALTER TABLE messages ADD COLUMN author text;\n"})
    options = {"session_lock_timeout": "1s", "lock_retry_delay": 1.5}

    holder = LockHolder(pg_server, pg_db, "messages")
    holder.start()
    without = ansible.module("pg_migrate", args(pg_server, pg_db, path, **options))
    holder.join(30)
    assert holder.saw_waiter and holder.error is None
    assert without["failed"] is True
    assert "lock timeout" in without["msg"] and "SQLSTATE 55P03" in without["msg"]
    assert "retr" not in without["msg"]
    assert history(pg_server, pg_db) == []

    holder = LockHolder(pg_server, pg_db, "messages")
    holder.start()
    retried = ansible.module("pg_migrate", args(pg_server, pg_db, path, lock_retries=3, **options))
    holder.join(30)
    assert holder.saw_waiter and holder.error is None
    assert retried.get("failed") is not True, retried.get("msg")
    assert retried["applied"][0]["lock_retries"] >= 1
    assert history(pg_server, pg_db) == [("1", "V1__author.sql", True)]

    # Any other error fails at once, retries or not.
    broken = write(tmp_path / "broken", {"V1__author.sql": "ALTER TABLE messages ADD COLUMN author text;\n",
                                         "V2__typo.sql": "ALTER TABLE no_such_table ADD COLUMN x int;\n"})
    failed = ansible.module("pg_migrate", args(pg_server, pg_db, broken, lock_retries=3, **options))
    assert failed["failed"] is True
    assert "no_such_table" in failed["msg"] and "SQLSTATE 42P01" in failed["msg"]
    assert "retr" not in failed["msg"]
