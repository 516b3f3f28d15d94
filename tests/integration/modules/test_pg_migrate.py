"""pg_migrate against a real PostgreSQL cluster, through ansible-playbook.

Several cases run as tasks of one playbook (each task registers its own result) to keep the
number of ansible-playbook start-ups low. Set-up steps that are not under test call the same
module_utils code in-process.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_migrate as pm
from tests.harness.migrations import public_tables as tables
from tests.harness.migrations import write_files as write

REPO = Path(__file__).resolve().parents[3]
FIXTURE = REPO / "tests" / "fixtures" / "migrations" / "octopus"
CHECK = {"check_mode": True}
V009_TABLES = [
    "service_instances", "service_metrics", "storage_optimization_stats", "ai_classifier_performance",
    "platform_optimization_stats", "crm_performance_metrics", "task_routing_optimization", "system_alerts",
    "cache_performance_stats", "load_balancer_stats",
]
V009_VIEWS = ["active_alerts_summary", "ai_classifier_daily_summary", "platform_performance_summary",
              "service_health_summary", "storage_efficiency_summary"]
MESSAGE_COLUMNS = ["compressed_size", "compression_enabled", "content_ref", "original_size", "storage_level"]
CLASSIFICATION_COLUMNS = ["cache_hit", "classifier_used", "performance_score", "processing_time"]


def run_tasks(ansible, tasks, *, check=False, diff=False):
    """Run several module tasks (module, args[, task keywords]) in one playbook; return their results."""
    play = {"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": f"task {i}", f"dbops.datastores.{task[0]}": task[1], "ignore_errors": True,
         **(task[2] if len(task) > 2 else {})}
        for i, task in enumerate(tasks)
    ]}
    path = ansible.workdir / f"tasks_{len(list(ansible.workdir.glob('tasks_*')))}.yml"
    path.write_text(json.dumps([play]))
    run = ansible.playbook(path, check=check, diff=diff)
    results = run.task_results()
    assert len(results) == len(tasks), f"rc={run.rc}\n{run.stdout}\n{run.stderr}"
    return results


def in_process(pg_server, db, path, **options):
    """Set-up helper: the module's code without ansible (not what the tests assert on)."""
    params = pg_server.params(login_db=db, path=str(path), ssl_mode="disable", **options)
    return pm.migrate(params, check_mode=False)


def history(pg_server, db, table="dbops_schema_history"):
    return pg_server.query(
        f"SELECT version, type, script, checksum, success, execution_ms, installed_by FROM {table}"
        " ORDER BY installed_rank", dbname=db)


def history_exists(pg_server, db):
    return pg_server.query("SELECT to_regclass('public.dbops_schema_history') IS NOT NULL", dbname=db)[0][0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- the four steps


@pytest.mark.pg_matrix
def test_octopus_check_apply_idempotent_verify(ansible, pg_server, pg_db):
    args = pg_server.params(login_db=pg_db, path=str(FIXTURE))

    check = ansible.module("pg_migrate", args, check=True, diff=True)
    assert check.get("failed") is not True, check
    assert check["changed"] is True
    assert check["version_before"] is None
    assert check["version"] == "010"
    assert [s["script"] for s in check["plan"]] == sorted(p.name for p in FIXTURE.glob("V*.sql"))
    v009 = check["plan"][8]
    assert v009["action"] == "apply" and v009["transaction"] is True
    assert v009["sql"] == (FIXTURE / "V009__add_service_optimization_tables.sql").read_text()
    assert check["plan"][9]["transaction"] is False
    assert check["applied"] == []
    assert check["diff"]["before"] == "version: (none)\n"
    assert "# apply V009__add_service_optimization_tables.sql" in check["diff"]["after"]
    assert not history_exists(pg_server, pg_db), "check mode must not create the history table"
    assert tables(pg_server, pg_db) == set()

    apply = ansible.module("pg_migrate", args)
    assert apply.get("failed") is not True, apply
    assert apply["changed"] is True
    assert apply["version_before"] is None and apply["version"] == "010"
    assert len(apply["applied"]) == 10
    assert all(isinstance(a["execution_ms"], int) and a["execution_ms"] >= 0 for a in apply["applied"])
    assert apply["pending"] == []

    again = ansible.module("pg_migrate", args)
    assert again.get("failed") is not True, again
    assert again["changed"] is False
    assert again["applied"] == [] and again["plan"] == []
    assert "plan" not in apply
    assert again["version_before"] == again["version"] == "010"

    # Verify on the server: the V009 objects exist, and the history is complete.
    present = tables(pg_server, pg_db)
    assert set(V009_TABLES) <= present
    assert {"tenants", "users", "bot_configs", "messages", "message_classifications", "tasks",
            "crm_integrations", "audit_logs"} <= present
    views = [r[0] for r in pg_server.query(
        "SELECT table_name FROM information_schema.views WHERE table_schema = 'public' ORDER BY 1",
        dbname=pg_db)]
    assert views == V009_VIEWS
    cols = pg_server.query(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        " AND table_name IN ('messages', 'message_classifications')", dbname=pg_db)
    assert set(MESSAGE_COLUMNS) <= {c for t, c in cols if t == "messages"}
    assert set(CLASSIFICATION_COLUMNS) <= {c for t, c in cols if t == "message_classifications"}
    valid = pg_server.query(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relname = 'idx_messages_tenant_storage_time'", dbname=pg_db)
    assert valid == [(True,)]
    rows = history(pg_server, pg_db)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (p.name[1:4], "versioned", p.name) for p in sorted(FIXTURE.glob("V*.sql"))
    ]
    assert all(r[3] == sha256(FIXTURE / r[2]) and r[4] is True and r[6] == pg_server.user for r in rows)


@pytest.mark.pg_matrix
def test_downgrade_needs_permission_and_undo_scripts(ansible, pg_server, pg_db, tmp_path):
    in_process(pg_server, pg_db, FIXTURE)
    args = pg_server.params(login_db=pg_db, path=str(FIXTURE), target="8")
    no_undo = shutil.copytree(FIXTURE, tmp_path / "no_undo")
    (no_undo / "U009__add_service_optimization_tables.sql").unlink()

    refused, missing, check, down, again = run_tasks(ansible, [
        ("pg_migrate", args),
        ("pg_migrate", {**args, "path": str(no_undo), "allow_downgrade": True}),
        ("pg_migrate", {**args, "allow_downgrade": True}, CHECK),
        ("pg_migrate", {**args, "allow_downgrade": True}),
        ("pg_migrate", {**args, "allow_downgrade": True}),
    ])
    assert refused["failed"] is True
    assert "target 8 is below the current version 010" in refused["msg"]
    assert "needs allow_downgrade=true" in refused["msg"]
    assert missing["failed"] is True
    assert "cannot undo V009__add_service_optimization_tables.sql: no undo script U009__*" in missing["msg"]
    assert check["changed"] is True
    assert [s["script"] for s in check["plan"]] == ["U010__index_messages_by_storage_level.sql",
                                                    "U009__add_service_optimization_tables.sql"]
    assert "DROP VIEW IF EXISTS service_health_summary CASCADE;" in check["plan"][1]["sql"]
    assert down["changed"] is True, down
    assert down["version_before"] == "010" and down["version"] == "008"
    assert [a["action"] for a in down["applied"]] == ["undo", "undo"]
    assert sorted(down["pending"]) == ["V009__add_service_optimization_tables.sql",
                                       "V010__index_messages_by_storage_level.sql"]
    assert again["changed"] is False

    present = tables(pg_server, pg_db)
    assert not set(V009_TABLES) & present
    cols = {r[0] for r in pg_server.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'messages'", dbname=pg_db)}
    assert not set(MESSAGE_COLUMNS) & cols
    assert [r[1] for r in history(pg_server, pg_db)[-2:]] == ["undo", "undo"]

    up = ansible.module("pg_migrate", pg_server.params(login_db=pg_db, path=str(FIXTURE)))
    assert up["changed"] is True and up["version"] == "010"
    assert set(V009_TABLES) <= tables(pg_server, pg_db)


# ---------------------------------------------------------------- bad inputs


def test_bad_inputs_fail_clearly_and_change_nothing(ansible, pg_server, pg_db, tmp_path):
    empty = write(tmp_path / "empty", {"README.md": "no migrations"})
    bad_names = write(tmp_path / "bad_names", {"V1__ok.sql": "CREATE TABLE ok1 (id int);",
                                               "009_add_tables.sql": "CREATE TABLE nope (id int);"})
    duplicate = write(tmp_path / "duplicate", {"V1__a.sql": "CREATE TABLE a (id int);",
                                               "V001__b.sql": "CREATE TABLE b (id int);"})
    orphan_undo = write(tmp_path / "orphan", {"V1__a.sql": "CREATE TABLE a (id int);",
                                              "U2__b.sql": "DROP TABLE b;"})
    syntax = write(tmp_path / "syntax", {
        "V1__first.sql": "CREATE TABLE first_ok (id int);",
        "V2__broken.sql": ("CREATE TABLE second (id int);\n\n"
                           "CREATE TABLE third (\n  id int,\n  name txet\n);\n"),
    })
    concurrently = write(tmp_path / "concurrently", {
        "V1__t.sql": "CREATE TABLE c (id int);",
        "V2__idx.sql": "CREATE INDEX CONCURRENTLY c_id ON c (id);",
    })
    base = pg_server.params(login_db=pg_db)
    results = run_tasks(ansible, [
        ("pg_migrate", {**base, "path": str(tmp_path / "missing")}),
        ("pg_migrate", {**base, "path": str(empty)}),
        ("pg_migrate", {**base, "path": str(bad_names)}),
        ("pg_migrate", {**base, "path": str(duplicate)}),
        ("pg_migrate", {**base, "path": str(orphan_undo)}),
        ("pg_migrate", {**base, "path": str(concurrently)}),
        ("pg_migrate", {**base, "path": str(syntax), "require_server_version": "99"}),
        ("pg_migrate", {**base, "path": str(syntax), "require_extensions": ["plpgsql", "no_such_extension"]}),
        ("pg_migrate", {**base, "path": str(syntax), "target": "newest"}),
        ("pg_migrate", {**base, "path": str(syntax)}),
    ])
    messages = [r.get("msg", "") for r in results]
    assert all(r.get("failed") is True for r in results), messages
    assert messages[0] == f"read migrations in {tmp_path / 'missing'}: the directory does not exist"
    assert messages[1] == f"read migrations in {empty}: no migration files (.sql) found"
    assert "009_add_tables.sql: unparsable migration name" in messages[2]
    assert "duplicate version 1: V001__b.sql and V1__a.sql" in messages[3]
    assert "U2__b.sql: undo for version 2 which has no V2__ migration" in messages[4]
    assert "V2__idx.sql: line 1: CREATE INDEX CONCURRENTLY c_id cannot run inside a transaction" in (
        messages[5])
    assert "'-- dbops:transaction=off'" in messages[5]
    assert "is older than the required 99" in messages[6]
    assert messages[7].endswith("not available on the server: no_such_extension (install the packages that"
                                " provide them)")
    assert "target: 'newest' is not a version" in messages[8]
    # The syntax error: V1 applied and kept, V2 rolled back; the message names file, line, server text.
    assert messages[9].startswith("apply migration V2__broken.sql statement 2 at line 5, column 8"
                                  " (name txet):"
                                  ' ERROR:  type "txet" does not exist')
    assert "rolled back" in messages[9]
    assert results[9]["applied"][0]["script"] == "V1__first.sql"
    assert results[9]["version"] == "1"
    assert "Traceback" not in json.dumps(results)
    # Nothing but V1 of the last task was ever applied.
    assert tables(pg_server, pg_db) == {"first_ok", "dbops_schema_history"}
    assert [r[2] for r in history(pg_server, pg_db)] == ["V1__first.sql"]


def test_what_psql_runs_in_a_transaction_runs_here(ansible, pg_server, pg_db, tmp_path):
    """A last statement whose trailing comment holds a semicolon; savepoints and ROLLBACK TO."""
    path = write(tmp_path / "m", {
        "V1__t.sql": "CREATE TABLE t (x int);\nINSERT INTO t VALUES (0);\nUPDATE t SET x = 1 -- done;",
        "V2__savepoint.sql": ("INSERT INTO t VALUES (2);\nSAVEPOINT before_three;\n"
                              "INSERT INTO t VALUES (3);\nROLLBACK TO SAVEPOINT before_three;\n"
                              "RELEASE SAVEPOINT before_three;\n"
                              "UPDATE t SET x = x + 10 -- all rows; the last line\n"),
    })
    scripts = ["V1__t.sql", "V2__savepoint.sql"]
    args = {**pg_server.params(login_db=pg_db), "path": str(path)}
    check, apply, again = run_tasks(ansible, [("pg_migrate", args, CHECK), ("pg_migrate", args),
                                              ("pg_migrate", args)])
    assert check.get("failed") is not True, check.get("msg")
    assert check["changed"] is True and [s["script"] for s in check["plan"]] == scripts
    assert apply.get("failed") is not True, apply.get("msg")
    assert apply["changed"] is True and [a["script"] for a in apply["applied"]] == scripts
    assert again.get("failed") is not True and again["changed"] is False
    assert pg_server.query("SELECT x FROM t ORDER BY x", dbname=pg_db) == [(11,), (12,)]
    assert [(r[2], r[4]) for r in history(pg_server, pg_db)] == [(s, True) for s in scripts]


# ---------------------------------------------------------------- validation


def test_checksum_drift_and_out_of_order(ansible, pg_server, pg_db, tmp_path):
    path = write(tmp_path / "m", {"V1__a.sql": "CREATE TABLE a (id int);",
                                  "V3__c.sql": "CREATE TABLE c (id int);"})
    in_process(pg_server, pg_db, path)
    (path / "V1__a.sql").write_text("CREATE TABLE a (id bigint);")
    write(path, {"V2__b.sql": "CREATE TABLE b (id int);"})
    args = pg_server.params(login_db=pg_db, path=str(path))
    drift, drift_and_late, ignored, late, late_ok, again = run_tasks(ansible, [
        ("pg_migrate", {**args, "out_of_order": True}),
        ("pg_migrate", args),
        ("pg_migrate", {**args, "validate_checksums": False, "out_of_order": True}, CHECK),
        ("pg_migrate", {**args, "validate_checksums": False}),
        ("pg_migrate", {**args, "validate_checksums": False, "out_of_order": True}),
        ("pg_migrate", {**args, "validate_checksums": False, "out_of_order": True}),
    ])
    assert drift["failed"] is True
    assert "checksum mismatch for applied migration V1__a.sql" in drift["msg"]
    assert drift_and_late["failed"] is True
    assert len(drift_and_late["problems"]) == 2
    assert ignored["plan"][0]["script"] == "V2__b.sql"
    assert late["failed"] is True
    assert late["msg"].endswith("out-of-order pending migrations V2__b.sql are older than the applied"
                                " version 3"
                                " (set out_of_order=true to apply them)")
    assert late_ok["changed"] is True
    assert [a["script"] for a in late_ok["applied"]] == ["V2__b.sql"]
    assert late_ok["version_before"] == late_ok["version"] == "3"
    assert again["changed"] is False
    assert [r[2] for r in history(pg_server, pg_db)] == ["V1__a.sql", "V3__c.sql", "V2__b.sql"]


def test_repeatable_placeholders_baseline_and_custom_history(ansible, pg_server, pg_db, tmp_path):
    pg_server.query("CREATE TABLE legacy (id int)", dbname=pg_db)
    path = write(tmp_path / "m", {
        "V1__legacy.sql": "CREATE TABLE legacy (id int);",
        "V2__owned.sql": "CREATE TABLE ${prefix}_owned (id int, note text DEFAULT '${note}');",
        "R__report_view.sql": "CREATE OR REPLACE VIEW report AS SELECT count(*) AS n FROM app_owned;",
    })
    args = pg_server.params(login_db=pg_db, path=str(path), baseline_version="1", history_schema="ops",
                            history_table="migrations", placeholders={"prefix": "app", "note": "hi"})
    first, second = run_tasks(ansible, [("pg_migrate", args), ("pg_migrate", args)])
    assert first.get("failed") is not True, first
    assert [(s["action"], s["script"]) for s in first["applied"]] == [
        ("baseline", "<< baseline 1 >>"), ("apply", "V2__owned.sql"), ("repeatable", "R__report_view.sql")]
    assert first["history_table"] == "ops.migrations"
    assert second["changed"] is False
    rows = history(pg_server, pg_db, "ops.migrations")
    assert [(r[0], r[1]) for r in rows] == [("1", "baseline"), ("2", "versioned"), (None, "repeatable")]
    assert rows[1][3] == sha256(path / "V2__owned.sql"), "checksum is over the file as written"
    assert pg_server.query("SELECT column_default FROM information_schema.columns WHERE table_name ="
                           " 'app_owned' AND column_name = 'note'", dbname=pg_db) == [("'hi'::text",)]

    (path / "R__report_view.sql").write_text(
        "CREATE OR REPLACE VIEW report AS SELECT count(*) AS n, max(id) AS top FROM app_owned;")
    (path / "V3__bad_placeholder.sql").write_text("SELECT '${undefined}';")
    missing, fixed = run_tasks(ansible, [
        ("pg_migrate", args),
        ("pg_migrate", {**args, "placeholders": {"prefix": "app", "note": "hi", "undefined": "x"}}),
    ])
    assert missing["failed"] is True
    assert "V3__bad_placeholder.sql: no value for ${undefined}" in missing["msg"]
    assert [(s["action"], s["script"]) for s in fixed["applied"]] == [
        ("apply", "V3__bad_placeholder.sql"), ("repeatable", "R__report_view.sql")]
    cols = pg_server.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'report'"
                           " ORDER BY ordinal_position", dbname=pg_db)
    assert cols == [("n",), ("top",)]


# ---------------------------------------------------------------- non-transactional, timeouts


@pytest.mark.pg_matrix
def test_failed_non_transactional_migration_blocks_until_repair(ansible, pg_server, pg_db, tmp_path):
    path = write(tmp_path / "m", {
        "V1__table.sql": "CREATE TABLE t (id int, email text);\nINSERT INTO t VALUES (1, 'a'), (2, 'a');",
        "V2__indexes.sql": ("-- dbops:transaction=off\n"
                            "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);\n"
                            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_email ON t (email);\n"),
        "V3__after.sql": "CREATE TABLE after_indexes (id int);",
    })
    args = pg_server.params(login_db=pg_db, path=str(path))
    failed, blocked = run_tasks(ansible, [("pg_migrate", args), ("pg_migrate", args)])
    assert failed["failed"] is True
    assert failed["msg"].startswith(
        "apply migration V2__indexes.sql (transaction=off) statement 2 at line 3, column 1"
        " (CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_email ON t (email);): ERROR:  could not create"
        " unique index")
    assert "statements 1-1 stay applied" in failed["msg"]
    assert "run with repair=true" in failed["msg"]
    assert [a["script"] for a in failed["applied"]] == ["V1__table.sql"]
    assert blocked["failed"] is True
    assert "V2__indexes.sql failed on" in blocked["msg"] and "repair=true" in blocked["msg"]
    assert [(r[2], r[4]) for r in history(pg_server, pg_db)] == [
        ("V1__table.sql", True), ("V2__indexes.sql", False)]
    assert "after_indexes" not in tables(pg_server, pg_db)

    # The operator cleans up (the invalid index, the duplicate row) and repairs.
    pg_server.query("DROP INDEX IF EXISTS t_email; DELETE FROM t WHERE id = 2", dbname=pg_db)
    check, repaired, again = run_tasks(ansible, [
        ("pg_migrate", {**args, "repair": True}, CHECK),
        ("pg_migrate", {**args, "repair": True}),
        ("pg_migrate", {**args, "repair": True}),
    ])
    assert [s["action"] for s in check["plan"]] == ["repair", "apply", "apply"]
    assert check["plan"][0]["rows"][0]["script"] == "V2__indexes.sql"
    assert repaired.get("failed") is not True, repaired["msg"]
    assert [a["action"] for a in repaired["applied"]] == ["repair", "apply", "apply"]
    assert again["changed"] is False
    assert [(r[2], r[4]) for r in history(pg_server, pg_db)] == [
        ("V1__table.sql", True), ("V2__indexes.sql", True), ("V3__after.sql", True)]
    assert pg_server.query("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                           " WHERE c.relname IN ('t_id', 't_email') AND i.indisvalid", dbname=pg_db) == [(2,)]


def test_session_timeouts_roll_back_the_migration(ansible, pg_server, pg_db, tmp_path):
    path = write(tmp_path / "m", {
        "V1__table.sql": "CREATE TABLE busy (id int);",
    })
    in_process(pg_server, pg_db, path)
    write(path, {"V2__slow.sql": "CREATE TABLE slow (id int);\nSELECT pg_sleep(5);"})
    alter = write(tmp_path / "alter", {"V1__table.sql": "CREATE TABLE busy (id int);",
                                       "V3__alter.sql": "ALTER TABLE busy ADD COLUMN note text;"})
    args = pg_server.params(login_db=pg_db, path=str(path))
    holder = pg_server.connect(pg_db, autocommit=False)
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE busy IN ACCESS SHARE MODE")
        slow, blocked = run_tasks(ansible, [
            ("pg_migrate", {**args, "statement_timeout": "300ms"}),
            ("pg_migrate", {**args, "session_lock_timeout": "300ms", "path": str(alter)}),
        ])
    finally:
        holder.rollback()
        holder.close()
    assert slow["failed"] is True
    assert slow["msg"] == ("apply migration V2__slow.sql statement 2 at line 2, column 1"
                           " (SELECT pg_sleep(5);):"
                           " ERROR:  canceling statement due to statement timeout (SQLSTATE 57014)"
                           " (rolled back: the database is as before this migration)")
    assert blocked["failed"] is True
    assert "apply migration V3__alter.sql statement 1 at line 1, column 1 (ALTER TABLE" in blocked["msg"]
    assert "canceling statement due to lock timeout" in blocked["msg"]
    assert tables(pg_server, pg_db) == {"busy", "dbops_schema_history"}
    assert [r[2] for r in history(pg_server, pg_db)] == ["V1__table.sql"]


# ---------------------------------------------------------------- concurrency


@pytest.mark.pg_matrix
def test_lock_timeout_names_the_holder(ansible, pg_server, pg_db, tmp_path):
    path = write(tmp_path / "m", {"V1__a.sql": "CREATE TABLE a (id int);"})
    keys = pm.lock_keys(pg_db, pm.Settings(path=str(path)))
    holder = pg_server.connect(pg_db)
    try:
        with holder.cursor() as cur:
            cur.execute("SET application_name = 'nightly-deploy'; SELECT pg_advisory_lock(%s, %s)", keys)
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        result = ansible.module("pg_migrate",
                                pg_server.params(login_db=pg_db, path=str(path), lock_timeout=1))
    finally:
        holder.close()
    assert result["failed"] is True
    assert result["msg"].startswith(f"lock migrations of {pg_db} (public.dbops_schema_history):"
                                    " still held after"
                                    f" 1s by pid {pid} (user postgres, application 'nightly-deploy'")
    assert result["lock_holder"]["pid"] == pid
    assert tables(pg_server, pg_db) == set()


CONCURRENT_RUNNER = """
import json, sys
sys.path[:0] = {paths!r}
from ansible_collections.dbops.datastores.plugins.module_utils import _pg_migrate as pm
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
try:
    result = pm.migrate(json.loads(sys.argv[1]), check_mode=False)
    print(json.dumps({{"ok": True, "applied": [a["script"] for a in result["applied"]],
                      "wait": result["lock_wait_s"]}}))
except DbopsError as exc:
    print(json.dumps({{"ok": False, "msg": exc.msg}}))
"""


@pytest.mark.pg_matrix
def test_four_concurrent_runners_apply_each_migration_once(ansible, pg_server, pg_db, tmp_path):
    files = {"V001__counter.sql": "CREATE TABLE applied_log (version int, at timestamptz DEFAULT now());"}
    for n in range(2, 13):
        files[f"V{n:03d}__step.sql"] = (f"INSERT INTO applied_log (version) VALUES ({n});\n"
                                        f"CREATE TABLE t{n} AS SELECT g FROM generate_series(1, 2000) g;\n"
                                        "SELECT pg_sleep(0.02);")
    files["V013__concurrent_index.sql"] = ("-- dbops:transaction=off\n"
                                           "CREATE INDEX CONCURRENTLY applied_log_version"
                                           " ON applied_log (version);")
    files["V014__last.sql"] = "INSERT INTO applied_log (version) VALUES (14);"
    path = write(tmp_path / "m", files)
    args = pg_server.params(login_db=pg_db, path=str(path), lock_timeout=60)

    # Two runners through real ansible-playbook, two in-process runners, all at once.
    playbook = tmp_path / "concurrent.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "migrate", "dbops.datastores.pg_migrate": args, "ignore_errors": True}]}]))
    procs = [subprocess.Popen(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(ansible.inventory),
         str(playbook)],
        env=ansible.env, cwd=ansible.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _n in range(2)]
    script = CONCURRENT_RUNNER.format(paths=[str(REPO), str(REPO / ".build" / "collections")])
    params = dict(args, ssl_mode="disable")
    procs += [subprocess.Popen([sys.executable, "-c", script, json.dumps(params)], env=ansible.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _n in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]

    applied: list[str] = []
    for out, _err in outputs[:2]:
        data = json.loads(out[out.find("{"):])
        result = data["plays"][0]["tasks"][0]["hosts"]["localhost"]
        assert result.get("failed") is not True, result
        applied += [a["script"] for a in result["applied"]]
    for out, err in outputs[2:]:
        data = json.loads(out.strip().splitlines()[-1])
        assert data["ok"] is True, (data, err)
        applied += data["applied"]
    assert sorted(applied) == sorted(files), "each migration is applied by exactly one runner"
    logged = pg_server.query("SELECT version FROM applied_log ORDER BY version", dbname=pg_db)
    assert [r[0] for r in logged] == [*range(2, 13), 14]
    rows = history(pg_server, pg_db)
    assert [r[2] for r in rows] == sorted(files)
    assert all(r[4] for r in rows)


@pytest.mark.parametrize("bad_setting", [{"statement_timeout": "soon"}])
def test_invalid_session_setting(ansible, pg_server, pg_db, bad_setting):
    result = ansible.module("pg_migrate", pg_server.params(login_db=pg_db, path=str(FIXTURE), **bad_setting))
    assert result["failed"] is True
    assert result["msg"].startswith("set statement_timeout to 'soon': ERROR:  invalid value for parameter")
    assert not history_exists(pg_server, pg_db)


def test_connection_error_is_reported(ansible, pg_server, pg_db):
    result = ansible.module("pg_migrate", pg_server.params(login_db=pg_db, path=str(FIXTURE),
                                                           login_password="wrong"))
    assert result["failed"] is True
    assert "password authentication failed" in result["msg"]
    assert '"wrong"' not in json.dumps(result)


def test_session_role_owns_the_objects_and_monitoring_reads_the_history(ansible, pg_server, pg_db, tmp_path):
    """migrate.yml logs in as the superuser but migrates as the database owner."""
    owner, monitor = f"{pg_db}_owner", f"{pg_db}_monitor"
    pg_server.query(f"CREATE ROLE {owner} NOLOGIN; CREATE ROLE {monitor} LOGIN PASSWORD 'm0n'"
                    f" IN ROLE pg_monitor; GRANT CREATE ON SCHEMA public TO {owner}", dbname=pg_db)
    path = write(tmp_path / "m", {"V1__a.sql": "CREATE TABLE a (id int);"})
    base = pg_server.params(login_db=pg_db, path=str(path))
    results = run_tasks(ansible, [
        ("pg_migrate", {**base, "session_role": "no_such_role"}),
        ("pg_migrate", {**base, "session_role": owner}),
    ])
    assert results[0]["failed"] is True
    assert results[0]["msg"].startswith(
        'set session role no_such_role: ERROR:  role "no_such_role" does not exist')
    assert results[1].get("failed") is not True, results[1]
    owners = dict(pg_server.query(
        "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c"
        " WHERE c.relname IN ('a', 'dbops_schema_history')", dbname=pg_db))
    assert owners == {"a": owner, "dbops_schema_history": owner}
    assert history(pg_server, pg_db)[0][6] == pg_server.params()["login_user"]  # installed_by: the login
    readable = pg_server.query(f"SELECT has_table_privilege('{monitor}', 'dbops_schema_history', 'SELECT'),"
                               f" has_table_privilege('{monitor}', 'a', 'SELECT')", dbname=pg_db)
    assert readable == [(True, False)]


# ---------------------------------------------------------------- placeholders are not SQL injection


def test_a_placeholder_value_with_a_quote_cannot_inject_sql(ansible, pg_server, pg_db, tmp_path):
    """docs advised '${note}'; a value with a quote used to close the literal and create a SUPERUSER."""
    role = f"evil_{pg_db[-8:]}"
    note = f"x'); CREATE ROLE {role} SUPERUSER; --"
    quoted = write(tmp_path / "quoted", {
        "V1__notes.sql": "CREATE TABLE notes (t text);\nINSERT INTO notes VALUES ('${note}');",
    })
    refused = ansible.module("pg_migrate", pg_server.params(login_db=pg_db, path=str(quoted),
                                                            placeholders={"note": note}))
    injected = pg_server.query("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    pg_server.query(f'DROP ROLE IF EXISTS "{role}"')
    assert injected == [], "the placeholder value created a SUPERUSER role"
    assert refused["failed"] is True
    assert "${note:literal}" in refused["msg"]
    assert pg_server.query("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)) == []
    assert tables(pg_server, pg_db) == set()  # refused before anything ran

    typed = write(tmp_path / "typed", {
        "V1__notes.sql": ("CREATE TABLE ${table:identifier} (t text);\n"
                          "INSERT INTO ${table:identifier} VALUES (${note:literal}), (${path:literal});"),
    })
    args = pg_server.params(login_db=pg_db, path=str(typed),
                            placeholders={"note": note, "table": 'odd "name', "path": "C:\\temp\\x'"})
    check = ansible.module("pg_migrate", args, check=True)
    assert check["changed"] is True and tables(pg_server, pg_db) == set()
    assert check["plan"][0]["sql"].startswith('CREATE TABLE "odd ""name" (t text);')
    first, second = run_tasks(ansible, [("pg_migrate", args), ("pg_migrate", args)])
    assert first.get("failed") is not True, first
    assert first["changed"] is True and second["changed"] is False
    assert pg_server.query("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)) == []
    rows = pg_server.query('SELECT t FROM "odd ""name" ORDER BY t', dbname=pg_db)
    assert sorted(r[0] for r in rows) == sorted([note, "C:\\temp\\x'"])


def test_secret_placeholders_never_appear_in_the_check_mode_plan(ansible, pg_server, pg_db, tmp_path):
    role = f"app_{pg_db[-8:]}"
    secret = "S3cr3t-'pw'-value"
    path = write(tmp_path / "m", {
        "V1__role.sql": "CREATE ROLE ${role:identifier} LOGIN PASSWORD ${password:literal};",
    })
    args = pg_server.params(login_db=pg_db, path=str(path), placeholders={"role": role},
                            secret_placeholders={"password": secret})
    check = ansible.module("pg_migrate", args, check=True, diff=True)
    assert check.get("failed") is not True, check
    assert secret not in json.dumps(check)
    assert "PASSWORD '********'" in check["plan"][0]["sql"]
    applied = ansible.module("pg_migrate", args)
    try:
        assert applied.get("failed") is not True, applied
        assert secret not in json.dumps(applied)
        assert pg_server.query("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,)) == [(False,)]
    finally:
        pg_server.query(f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.parametrize("transaction", ["on", "off"])
def test_an_error_on_a_long_line_never_shows_part_of_a_secret(
        ansible, pg_server, pg_db, tmp_path, transaction):
    """The line an error message shows is cut at 120 characters; no_log masks whole values only, so a
    secret cut in two would show its first part: secret values are masked before the cut."""
    secret = "Sup3rS3cretPassw0rd-Value-0123456789"
    # the quoted secret starts at character 100 of its line: the cut at 117 falls inside it
    line = f"SELECT '{'a' * 82}' AS pad, ${{password:literal}} AS pw, no_such_column FROM pg_class;\n"
    directive = "-- dbops:transaction=off\n" if transaction == "off" else ""
    path = write(tmp_path / "m", {"V1__long.sql": directive + line})
    result = ansible.module("pg_migrate", pg_server.params(login_db=pg_db, path=str(path),
                                                           secret_placeholders={"password": secret}))
    assert result.get("failed") is True
    assert 'column "no_such_column" does not exist' in result["msg"], result["msg"]
    text = json.dumps(result)
    assert all(secret[:n] not in text for n in range(6, len(secret) + 1)), result["msg"]
    assert "'********'" in result["msg"]
