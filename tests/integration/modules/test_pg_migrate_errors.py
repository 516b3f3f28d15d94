"""pg_migrate error locations for errors the server gives no position (located by a rolled-back replay)."""

from __future__ import annotations

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_migrate as pm
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from tests.harness.migrations import applied_scripts as history
from tests.harness.migrations import public_tables as tables
from tests.harness.migrations import write_files as write

V1 = "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL CHECK (balance >= 0));\n"


def migrate(pg_server, db, path) -> DbopsError:
    params = pg_server.params(login_db=db, path=str(path), ssl_mode="disable")
    with pytest.raises(DbopsError) as caught:
        pm.migrate(params, check_mode=False)
    return caught.value


def test_errors_without_a_position_name_their_statement(ansible, pg_server, pg_db, tmp_path):
    path = write(tmp_path / "m", {
        "V1__accounts.sql": V1,
        "V2__load.sql": ("CREATE TABLE ledger (id int);\n"
                         "INSERT INTO accounts VALUES (1, 10);\n\n"
                         "INSERT INTO accounts VALUES (2, -5);\n"
                         "CREATE TABLE after_load (id int);\n"),
    })
    params = pg_server.params(login_db=pg_db, path=str(path), ssl_mode="disable")
    result = ansible.module("pg_migrate", params)
    assert result["failed"] is True
    # A check violation has no position: the replay finds statement 3, line 4.
    assert result["msg"].startswith(
        "apply migration V2__load.sql statement 3 at line 4, column 1 (INSERT INTO accounts VALUES (2, -5);):"
        ' ERROR:  new row for relation "accounts" violates check constraint "accounts_balance_check"')
    assert result["msg"].endswith("(rolled back: the database is as before this migration)")
    assert [a["script"] for a in result["applied"]] == ["V1__accounts.sql"]
    # The replay was rolled back too: no table of V2, no row, no history entry.
    assert tables(pg_server, pg_db) == {"accounts", "dbops_schema_history"}
    assert pg_server.query("SELECT count(*) FROM accounts", dbname=pg_db) == [(0,)]
    assert history(pg_server, pg_db) == [("V1__accounts.sql", True)]


def test_raise_and_verify_failures_are_located(pg_server, pg_db, tmp_path):
    path = write(tmp_path / "m", {
        "V1__accounts.sql": V1,
        "V2__guard.sql": ("INSERT INTO accounts VALUES (1, 10);\n"
                          "DO $$BEGIN\n  RAISE EXCEPTION 'refusing: %', 'no owner';\nEND$$;\n"),
    })
    raised = migrate(pg_server, pg_db, path)
    assert raised.msg.startswith("apply migration V2__guard.sql statement 2 at line 2, column 1 (DO $$BEGIN):"
                                 " ERROR:  refusing: no owner")
    assert raised.details["sqlstate"] == "P0001"

    write(path, {
        "V2__guard.sql": "INSERT INTO accounts VALUES (1, 10);\n",
        "V2__guard.verify.sql": ("SELECT 1 FROM accounts;\n"
                                 "SELECT 1 / (SELECT count(*)::int - 1 FROM accounts);\n"),
    })
    verify = migrate(pg_server, pg_db, path)
    assert verify.msg.startswith(
        "apply migration V2__guard.sql: verify script V2__guard.verify.sql failed at statement 2, line 2,"
        " column 1 (SELECT 1 / (SELECT count(*)::int - 1 FROM accounts);): ERROR:  division by zero")
    assert history(pg_server, pg_db) == [("V1__accounts.sql", True)]
    assert pg_server.query("SELECT count(*) FROM accounts", dbname=pg_db) == [(0,)]


def test_replay_side_effects_and_an_error_that_does_not_recur(pg_server, pg_db, tmp_path):
    """What a rollback cannot undo: the replay takes sequence values a second time (documented)."""
    pg_server.query("CREATE SEQUENCE tickets", dbname=pg_db)
    path = write(tmp_path / "m", {
        "V1__accounts.sql": V1,
        # Fails only the first time: the replay sees nextval = 2 and the statement succeeds.
        "V2__flaky.sql": "CREATE TABLE flaky (id int);\nSELECT 1 / (nextval('tickets') - 1)::int;\n",
    })
    flaky = migrate(pg_server, pg_db, path)
    assert flaky.msg == (
        "apply migration V2__flaky.sql (statement not located: no statement failed the same way when the"
        " migration was replayed in a rolled-back transaction): ERROR:  division by zero (SQLSTATE 22012)"
        " (rolled back: the database is as before this migration)")
    # The failed run took value 1, the replay value 2; both survive the rollbacks.
    assert pg_server.query("SELECT last_value FROM tickets", dbname=pg_db) == [(2,)]
    assert tables(pg_server, pg_db) == {"accounts", "dbops_schema_history"}
    assert history(pg_server, pg_db) == [("V1__accounts.sql", True)]


def test_a_big_run_lists_its_first_and_last_steps(ansible, pg_server, pg_db, tmp_path):
    path = write(tmp_path / "m", {f"V{i}__step_{i}.sql": f"CREATE TABLE step_{i} (id int);\n"
                                  for i in range(1, 131)})
    base = pg_server.params(login_db=pg_db, path=str(path), ssl_mode="disable")
    compact = ansible.module("pg_migrate", base, diff=True)
    assert compact.get("failed") is not True, compact.get("msg")
    assert (compact["applied_count"], compact["applied_omitted"]) == (130, 30)
    assert [a["version"] for a in compact["applied"]] == [str(i) for i in (*range(1, 51), *range(81, 131))]
    assert compact["applied"][0]["script"] == "V1__step_1.sql" and "checksum" in compact["applied"][-1]
    assert "# ... 30 more steps (applied_detail=full lists them)\n" in compact["diff"]["after"]
    recorded = pg_server.query("SELECT count(*) FROM dbops_schema_history WHERE success", dbname=pg_db)
    assert recorded == [(130,)]

    # The same set against a second history table (the tables exist: the scripts skip them) in full.
    write(path, {f"V{i}__step_{i}.sql": f"CREATE TABLE IF NOT EXISTS step_{i} (id int);\n"
                 for i in range(1, 131)})
    full = ansible.module("pg_migrate", {**base, "history_table": "second_history", "applied_detail": "full"})
    assert full.get("failed") is not True, full.get("msg")
    assert (full["applied_count"], full["applied_omitted"]) == (130, 0)
    assert [a["version"] for a in full["applied"]] == [str(i) for i in range(1, 131)]
    bad = ansible.module("pg_migrate", {**base, "applied_detail": "everything"})
    assert bad["failed"] is True and "applied_detail" in bad["msg"] and "compact, full" in bad["msg"]
