"""pg_migrate sends consecutive transactional migrations in one message, each its own transaction."""

from __future__ import annotations

import time

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_migrate as pm
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from tests.harness.migrations import applied_scripts as history
from tests.harness.migrations import public_tables as tables
from tests.harness.migrations import write_files as write


def params(pg_server, db, path, **options):
    return pg_server.params(login_db=db, path=str(path), ssl_mode="disable", **options)


def backends(pg_server, db):
    return pg_server.query("SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                           " AND application_name LIKE 'dbops pg_migrate%%'", (db,))[0][0]


def test_failure_mid_batch_keeps_the_versions_before_it_and_nothing_after(
        ansible, pg_server, pg_db, tmp_path):
    files = {f"V{n}__t{n}.sql": f"CREATE TABLE t{n} (id int);\nINSERT INTO t{n} VALUES ({n});\n"
             for n in range(1, 7)}
    files["V4__t4.sql"] = "CREATE TABLE t4 (id int);\nINSERT INTO t4 VALUES (4);\nSELEC 1;\n"
    path = write(tmp_path / "m", files)
    result = ansible.module("pg_migrate", params(pg_server, pg_db, path))
    assert result["failed"] is True
    # The server's position, mapped back into the fourth migration of the message.
    assert result["msg"].startswith(
        'apply migration V4__t4.sql statement 3 at line 3, column 1 (SELEC 1;): ERROR:  syntax error at or'
        ' near "SELEC"'), result["msg"]
    assert result["msg"].endswith("(rolled back: the database is as before this migration)")
    assert [a["script"] for a in result["applied"]] == ["V1__t1.sql", "V2__t2.sql", "V3__t3.sql"]
    assert result["changed"] is True and result["version"] == "3"
    assert history(pg_server, pg_db) == [(f"V{n}__t{n}.sql", True) for n in (1, 2, 3)]
    assert tables(pg_server, pg_db) == {"dbops_schema_history", "t1", "t2", "t3"}

    # An error without a position (a constraint) in the middle: located by the rolled-back replay.
    files["V4__t4.sql"] = ("CREATE TABLE t4 (id int CHECK (id > 0));\nINSERT INTO t4 VALUES (4);\n\n"
                           "INSERT INTO t4 VALUES (-4);\n")
    write(path, files)
    with pytest.raises(DbopsError) as caught:
        pm.migrate(params(pg_server, pg_db, path), check_mode=False)
    assert caught.value.msg.startswith(
        "apply migration V4__t4.sql statement 3 at line 4, column 1 (INSERT INTO t4 VALUES (-4);):")
    assert history(pg_server, pg_db) == [(f"V{n}__t{n}.sql", True) for n in (1, 2, 3)]
    assert "t4" not in tables(pg_server, pg_db)

    # Fixed: the rest goes through, each with its own history row and its own time.
    files["V4__t4.sql"] = "CREATE TABLE t4 (id int);\nSELECT pg_sleep(0.3);\n"
    write(path, files)
    done = ansible.module("pg_migrate", params(pg_server, pg_db, path))
    assert done.get("failed") is not True, done.get("msg")
    assert [a["script"] for a in done["applied"]] == ["V4__t4.sql", "V5__t5.sql", "V6__t6.sql"]
    ms = dict(pg_server.query("SELECT script, execution_ms FROM dbops_schema_history", dbname=pg_db))
    assert ms["V4__t4.sql"] >= 300 and ms["V5__t5.sql"] < 300 and ms["V6__t6.sql"] < 300, ms
    assert [a["execution_ms"] for a in done["applied"]] == [ms[f"V{n}__t{n}.sql"] for n in (4, 5, 6)]
    assert history(pg_server, pg_db) == [(f"V{n}__t{n}.sql", True) for n in range(1, 7)]
    again = ansible.module("pg_migrate", params(pg_server, pg_db, path))
    assert again["changed"] is False and again["applied"] == []


def test_batches_are_bounded_and_transaction_off_runs_alone(pg_server, pg_db, tmp_path, monkeypatch):
    monkeypatch.setattr(pm, "BATCH_MAX_VERSIONS", 3)
    files = {f"V{n:02d}__t{n}.sql": f"CREATE TABLE t{n} (id int);\n" for n in range(1, 11)}
    del files["V05__t5.sql"]
    files["V05__idx.sql"] = "-- dbops:transaction=off\nCREATE INDEX CONCURRENTLY t4_id ON t4 (id);\n"
    path = write(tmp_path / "m", files)
    sent: list[list[str]] = []
    real = pm.Migrator._send_batch

    def spy(self, scripts):
        sent.append([s.step.script for s in scripts])
        return real(self, scripts)

    monkeypatch.setattr(pm.Migrator, "_send_batch", spy)
    result = pm.migrate(params(pg_server, pg_db, path), check_mode=False)
    assert result["applied_count"] == 10
    # V04 is left alone by the bound before the transaction=off V05 (a single one goes unbatched).
    assert sent == [["V01__t1.sql", "V02__t2.sql", "V03__t3.sql"],
                    ["V06__t6.sql", "V07__t7.sql", "V08__t8.sql"], ["V09__t9.sql", "V10__t10.sql"]]
    assert [r[0] for r in history(pg_server, pg_db)] == sorted(files)


def test_a_noop_run_uses_one_connection_and_takes_no_lock(pg_server, pg_db, tmp_path, monkeypatch):
    path = write(tmp_path / "m", {"V1__a.sql": "CREATE TABLE a (id int);\n"})
    pm.migrate(params(pg_server, pg_db, path), check_mode=False)
    opened: list[str] = []
    real = pm.open_connection

    def counting(conn_params, role):
        opened.append(role)
        return real(conn_params, role)

    monkeypatch.setattr(pm, "open_connection", counting)
    monkeypatch.setattr(pm.Migrator, "acquire_lock", lambda self: pytest.fail("a no-op took the lock"))
    result = pm.migrate(params(pg_server, pg_db, path), check_mode=False)
    assert result["changed"] is False and result["applied"] == []
    assert opened == ["migrate"]
    assert backends(pg_server, pg_db) == 0


def test_lock_timeout_mid_batch_retries_that_version_alone(ansible, pg_server, pg_db, tmp_path):
    from tests.integration.modules.test_pg_migrate_verify import LockHolder

    pg_server.query("CREATE TABLE messages (id int)", dbname=pg_db)
    path = write(tmp_path / "m", {"V1__a.sql": "CREATE TABLE a (id int);\n",
                                  "V2__author.sql": "ALTER TABLE messages ADD COLUMN author text;\n",
                                  "V3__c.sql": "CREATE TABLE c (id int);\n"})
    options = {"session_lock_timeout": "1s", "lock_retry_delay": 1.5}
    holder = LockHolder(pg_server, pg_db, "messages")
    holder.start()
    failed = ansible.module("pg_migrate", params(pg_server, pg_db, path, **options))
    holder.join(30)
    assert holder.saw_waiter and holder.error is None
    assert failed["failed"] is True and "SQLSTATE 55P03" in failed["msg"]
    assert failed["msg"].startswith("apply migration V2__author.sql")
    assert history(pg_server, pg_db) == [("V1__a.sql", True)]
    assert "c" not in tables(pg_server, pg_db)

    pg_server.query("DROP TABLE a; DELETE FROM dbops_schema_history", dbname=pg_db)
    holder = LockHolder(pg_server, pg_db, "messages")
    holder.start()
    retried = ansible.module("pg_migrate", params(pg_server, pg_db, path, lock_retries=3, **options))
    holder.join(30)
    assert holder.saw_waiter and holder.error is None
    assert retried.get("failed") is not True, retried.get("msg")
    assert [a["script"] for a in retried["applied"]] == ["V1__a.sql", "V2__author.sql", "V3__c.sql"]
    assert "lock_retries" not in retried["applied"][0] and retried["applied"][1]["lock_retries"] >= 1
    assert history(pg_server, pg_db) == [("V1__a.sql", True), ("V2__author.sql", True), ("V3__c.sql", True)]


def _terminate(pg_server, pid):
    """End a server session and wait until it is gone (its locks released)."""
    pg_server.query("SELECT pg_terminate_backend(%s)", (pid,))
    deadline = time.monotonic() + 30
    while pg_server.query("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))[0][0]:
        assert time.monotonic() < deadline, f"backend {pid} did not end"
        time.sleep(0.02)


def migrate_ending_first(pg_server, monkeypatch, db, path, *, method, session):
    """pm.migrate with the runner's ``session`` (``lock_conn`` or ``conn``) ended right before each
    call of ``Migrator.<method>``; the DbopsError it raises."""
    real = getattr(pm.Migrator, method)

    def ending_first(self, *args):
        _terminate(pg_server, getattr(self, session).get_backend_pid())
        return real(self, *args)

    monkeypatch.setattr(pm.Migrator, method, ending_first)
    with pytest.raises(DbopsError) as caught:
        pm.migrate(params(pg_server, db, path), check_mode=False)
    return caught.value


def test_a_batch_stops_when_its_lock_connection_is_gone(pg_server, pg_db, tmp_path, monkeypatch):
    path = write(tmp_path / "m", {f"V{n}__t{n}.sql": f"CREATE TABLE t{n} (id int);\n" for n in range(1, 5)})
    # What a killed runner leaves: its lock session ends, its migrate session goes on.
    error = migrate_ending_first(pg_server, monkeypatch, pg_db, path,
                                 method="_send_batch", session="lock_conn")
    assert error.msg.startswith("apply migration V1__t1.sql: the connection holding the migration lock"
                                f" of {pg_db} was lost"), error.msg
    assert history(pg_server, pg_db) == []
    assert "t1" not in tables(pg_server, pg_db)


@pytest.mark.parametrize("script", [
    "CREATE TABLE t1 (id int);\n",  # sent alone: one message, no batch
    "-- dbops:transaction=off\nCREATE TABLE t1 (id int);\n",
])
def test_a_migration_sent_alone_stops_when_its_lock_connection_is_gone(
        pg_server, pg_db, tmp_path, monkeypatch, script):
    path = write(tmp_path / "m", {"V1__t1.sql": script})
    error = migrate_ending_first(pg_server, monkeypatch, pg_db, path,
                                 method="run_script", session="lock_conn")
    assert error.msg.startswith("apply migration V1__t1.sql: the connection holding the migration lock"
                                f" of {pg_db} was lost"), error.msg
    assert history(pg_server, pg_db) == []
    assert "t1" not in tables(pg_server, pg_db)


def test_a_lost_migration_connection_says_the_outcome_is_unknown(pg_server, pg_db, tmp_path, monkeypatch):
    path = write(tmp_path / "m", {"V1__t1.sql": "CREATE TABLE t1 (id int);\n"})
    error = migrate_ending_first(pg_server, monkeypatch, pg_db, path,
                                 method="run_script", session="conn")
    assert error.msg.startswith("apply migration V1__t1.sql: the connection to the server was lost"
                                " while it ran ("), error.msg
    assert error.msg.endswith("whether it committed is unknown: run again, the history says")
    assert "rolled back" not in error.msg
