"""PostgreSQL-specific pure helpers of pg_migrate (no server)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _migrations as mig
from ansible_collections.dbops.datastores.plugins.module_utils import _pg_migrate as pm
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

FIXTURE = Path(__file__).resolve().parents[3] / "fixtures" / "migrations" / "octopus"


def step_for(script: str, content: str, action: str = mig.ACTION_APPLY) -> mig.Step:
    data = content.encode()
    version = mig.parse_version("1")
    migration = mig.Migration(mig.KIND_VERSIONED, version, "x", script, mig.checksum(data), data)
    return mig.Step(action, migration.version, "x", script, migration.checksum, migration)


def test_settings_from_params_defaults():
    settings = pm.Settings.from_params({"path": "/m", "placeholders": {"n": 1, "e": None}, "lock_timeout": 5})
    assert settings.history_name == "public.dbops_schema_history"
    assert settings.placeholders == {"n": "1", "e": ""}
    assert settings.lock_timeout == 5.0
    assert settings.validate_checksums is True
    options = settings.plan_options()
    assert options.target is None and not options.allow_downgrade


@pytest.mark.parametrize(("text", "expected"), [
    ("-- dbops:transaction=off\nCREATE INDEX CONCURRENTLY i ON t (a);", {"transaction": "off"}),
    ("\n--dbops: transaction = OFF\n", {"transaction": "off"}),
    ("-- a comment first\n-- dbops:transaction=on\nSELECT 1;", {"transaction": "on"}),
    ("SELECT 1;\n-- dbops:transaction=off", {}),
    ("-- nothing special\nSELECT 1;", {}),
])
def test_directives(text, expected):
    assert pm.parse_directives(text, "V1__x.sql") == expected


@pytest.mark.parametrize(("text", "message"), [
    ("-- dbops:transactoin=off", "unknown directive dbops:transactoin"),
    ("-- dbops:transaction=maybe", r"dbops:transaction=maybe is not valid \(use on or off\)"),
    ("-- dbops: transaction", "malformed directive"),
])
def test_bad_directives(text, message):
    with pytest.raises(DbopsError, match=message):
        pm.parse_directives(text, "V1__x.sql")


def test_placeholders():
    text = "CREATE SCHEMA ${schema}; GRANT USAGE ON SCHEMA ${schema} TO ${app.role};"
    assert pm.substitute(text, {"schema": "app", "app.role": "web"}, "V1__x.sql") == (
        "CREATE SCHEMA app; GRANT USAGE ON SCHEMA app TO web;"
    )
    assert pm.substitute(text, {}, "V1__x.sql") == text
    with pytest.raises(DbopsError, match=r"in V1__x.sql: no value for \$\{app.role\}"):
        pm.substitute(text, {"schema": "app"}, "V1__x.sql")


@pytest.mark.parametrize(("text", "num"),
                         [("16", 160000), ("15.4", 150004), ("9.6.3", 90603), ("10", 100000)])
def test_required_version_num(text, num):
    assert pm.required_version_num(text) == num


@pytest.mark.parametrize("text", ["fifteen", "15.x", "1.2.3.4"])
def test_bad_required_version(text):
    with pytest.raises(DbopsError, match=r"is not a version like 15 or 15\.4"):
        pm.required_version_num(text)


def test_prepare_transactional_script():
    script = pm.prepare(step_for("V1__x.sql", "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);"), {})
    assert script.transactional is True
    assert len(script.statements) == 2
    assert script.to_dict(with_sql=True)["sql"].startswith("CREATE TABLE")
    assert "sql" not in script.to_dict(with_sql=False)


def test_concurrently_in_transaction_fails_early_naming_the_directive():
    step = step_for("V3__idx.sql", "CREATE TABLE a (id int);\n\nCREATE INDEX CONCURRENTLY i ON a (id);")
    with pytest.raises(DbopsError) as info:
        pm.prepare(step, {})
    assert info.value.msg == (
        "check V3__idx.sql: line 3: CREATE INDEX CONCURRENTLY i cannot run inside a transaction: add"
        " '-- dbops:transaction=off' as the first line to run this script statement by statement in"
        " autocommit"
    )


def test_concurrently_allowed_with_directive():
    step = step_for("V3__idx.sql", "-- dbops:transaction=off\nCREATE INDEX CONCURRENTLY i ON a (id);")
    script = pm.prepare(step, {})
    assert script.transactional is False
    assert script.statements[0].line == 2


def test_prepare_all_collects_every_problem():
    steps = [
        step_for("V1__a.sql", "COMMIT;"),
        step_for("V2__b.sql", "\\set x 1\nSELECT 1;"),
        step_for("V3__c.sql", "SELECT '${missing}';"),
        step_for("V4__ok.sql", "SELECT 1;"),
        mig.Step(mig.ACTION_BASELINE, mig.parse_version("1"), "baseline", "<< baseline 1 >>", None),
    ]
    with pytest.raises(DbopsError) as info:
        pm.prepare_all(steps, {"other": "x"})
    problems = info.value.details["problems"]
    assert len(problems) == 3
    assert "V1__a.sql: line 1: transaction control (COMMIT)" in problems[0]
    assert "psql meta-command \\set" in problems[1]
    assert "no value for ${missing}" in problems[2]


def test_fixture_scripts_prepare_cleanly():
    migrations = mig.discover(str(FIXTURE), pm.EXTENSIONS)
    plan = mig.plan(migrations, [])
    scripts = pm.prepare_all(plan.steps, {})
    assert [s.transactional for s in scripts] == [True] * 9 + [False]
    v009 = scripts[8]
    assert v009.step.script == "V009__add_service_optimization_tables.sql"
    heads = [s.head for s in v009.statements]
    assert sum(h.startswith("CREATE TABLE") for h in heads) == 10
    assert sum(h.startswith("CREATE VIEW") for h in heads) == 5
    assert sum(h.startswith("CREATE INDEX") for h in heads) == 10
    assert sum(h.startswith("ALTER TABLE") for h in heads) == 2
    # The trigger function's body (with semicolons) is one statement.
    v007 = scripts[6]
    assert len(v007.statements) == 7


def test_locate_and_history_helpers():
    sql = "SELECT 1;\nSELECT nope FROM t;\n"
    assert pm.locate(sql, sql.index("nope")) == "line 2, column 8 (SELECT nope FROM t;)"
    settings = pm.Settings(path="/m", history_schema='we"ird', history_table="hist")
    assert pm.history_ident(settings) == '"we""ird"."hist"'
    assert "CREATE TABLE IF NOT EXISTS \"we\"\"ird\".\"hist\"" in pm.history_ddl(settings)
    k1, k2 = pm.lock_keys("app", settings)
    assert k1 == pm.LOCK_CLASS_ID and 0 <= k2 < 2**31
    assert pm.lock_keys("app", settings) != pm.lock_keys("other", settings)


def test_server_message_from_diagnostics():
    diag = SimpleNamespace(message_primary='relation "t" does not exist', severity="ERROR",
                           message_detail=None, message_hint="Create it first.", context=None)
    exc = SimpleNamespace(diag=diag, pgcode="42P01")
    assert pm.server_message(exc) == ('ERROR:  relation "t" does not exist HINT:  Create it first.'
                                      " (SQLSTATE 42P01)")
    assert pm.server_message(ValueError("connection lost\n  now")) == "connection lost now"


def test_diff_lists_version_and_scripts():
    result = pm.diff("8", "9", [{"action": "apply", "script": "V009__x.sql"}])
    assert result["before"] == "version: 8\n"
    assert result["after"] == "version: 9\n# apply V009__x.sql\n"
    assert pm.diff(None, None, [])["before"] == "version: (none)\n"


def test_transaction_message_is_one_string_without_extra_statements():
    sql = "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1) -- no semicolon"
    statements = pm._pg_script.split(sql)
    message = pm.transaction_message('"public"."h"', statements, "INSERT INTO h VALUES (1)")
    assert message.text == ('BEGIN;\nLOCK TABLE "public"."h" IN SHARE ROW EXCLUSIVE MODE;\n'
                            "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1) -- no semicolon\n;\n"
                            "INSERT INTO h VALUES (1);\nCOMMIT;")
    for start, end, statement, _number in message.spans:
        assert message.text[start:end] == statement.text


def test_transaction_message_ends_a_last_statement_whose_comment_holds_a_semicolon():
    # The ; in the comment does not end the UPDATE: without a terminator the server would read the
    # history INSERT as part of it.
    for sql in ("CREATE TABLE t (x int);\nUPDATE t SET x = 1 -- done;", "UPDATE t SET x = 1 -- done;\n"):
        statements = pm._pg_script.split(sql)
        message = pm.transaction_message("h", statements, "INSERT INTO h VALUES (1)")
        last = statements[-1].text
        assert message.text.endswith(f"\n{last}\n;\nINSERT INTO h VALUES (1);\nCOMMIT;")
        assert [statement.terminated for statement in statements] == [True] * (len(statements) - 1) + [False]


def test_copy_from_stdin_is_refused_naming_file_and_line():
    step = step_for("V5__data.sql", "CREATE TABLE t (a int);\nCOPY t FROM stdin;\n1\n2\n\\.\n")
    with pytest.raises(DbopsError) as info:
        pm.prepare(step, {})
    assert info.value.msg == (
        "check V5__data.sql: line 2: COPY ... FROM STDIN is not supported (psql sends the lines after it, up"
        " to \\., as its data; a migration is SQL only): write the data as INSERT statements or COPY ... FROM"
        " a file on the database server")


def test_failure_located_by_the_server_position():
    sql = "CREATE TABLE a (id int);\n\nINSERT INTO a VALUES (1, nope);"
    statements = pm._pg_script.split(sql)
    verify_sql = "SELECT 1;\nSELECT 1/0 FROM a;"
    verify = pm.VerifySql("V1__a.verify.sql", verify_sql, pm._pg_script.split(verify_sql))
    message = pm.transaction_message("h", statements, "INSERT INTO h DEFAULT VALUES", verify=verify)
    second_start = message.spans[1][0]
    position = second_start + statements[1].text.index("nope") + 1  # 1-based, as the server says
    assert message.locate_failure(sql, position) == (
        " statement 2 at line 3, column 26 (INSERT INTO a VALUES (1, nope);)")
    assert message.locate_failure(sql, 3) == " while locking the history table"
    assert message.locate_failure(sql, len(message.text) - 3) == " while recording it in the history"
    in_verify = message.verify_spans[1][0] + verify.statements[1].text.index("a;") + 1
    assert message.locate_failure(sql, in_verify) == (
        ": verify script V1__a.verify.sql failed at statement 2, line 2, column 17 (SELECT 1/0 FROM a;)")


@pytest.mark.parametrize(("text", "values", "expected"), [
    ("'${note:literal}'", {"note": "it's"}, "''it''s''"),
    ("${note:literal}", {"note": "it's"}, "'it''s'"),
    ("${p:literal}", {"p": "C:\\x'"}, "E'C:\\\\x'''"),
    ("${t:identifier}", {"t": 'a "b'}, '"a ""b"'),
    ("${n} ${d}", {"n": "42", "d": "2026-01-01"}, "42 2026-01-01"),
    ("${v:raw}", {"v": "now() - interval '1 day'"}, "now() - interval '1 day'"),
])
def test_placeholder_kinds(text, values, expected):
    placeholders = pm.Placeholders.from_params({"placeholders": values, "raw_placeholders": ["v"]})
    assert pm.substitute(text, placeholders, "V1__x.sql") == expected


@pytest.mark.parametrize("value", ["x'); CREATE ROLE evil SUPERUSER; --", "1 OR true", "a--b", "-5", "x;y",
                                   "a/*", "$$", "a b"])
def test_a_bare_placeholder_refuses_values_that_change_the_statement(value):
    with pytest.raises(DbopsError, match=r"\$\{note:literal\}") as err:
        pm.substitute("INSERT INTO t VALUES ('${note}');", {"note": value}, "V1__x.sql")
    assert value not in err.value.msg  # the value may be a secret


def test_raw_needs_the_opt_in_and_unknown_kinds_fail():
    with pytest.raises(DbopsError, match="raw_placeholders"):
        pm.substitute("${v:raw}", {"v": "1"}, "V1__x.sql")
    with pytest.raises(DbopsError, match="unknown kind"):
        pm.substitute("${v:quoted}", {"v": "1"}, "V1__x.sql")
    with pytest.raises(DbopsError, match="NUL"):
        pm.substitute("${v:literal}", {"v": "a\0b"}, "V1__x.sql")


def test_secret_placeholders_are_masked_in_the_shown_sql():
    placeholders = pm.Placeholders.from_params({"placeholders": {"r": "app"},
                                                "secret_placeholders": {"pw": "s'ecret"}})
    text = "CREATE ROLE ${r} PASSWORD ${pw:literal};"
    assert pm.substitute(text, placeholders, "V1__x.sql") == "CREATE ROLE app PASSWORD 's''ecret';"
    shown = pm.substitute(text, placeholders, "V1__x.sql", masked=True)
    assert shown == "CREATE ROLE app PASSWORD '********';"
    assert "s''ecret" in pm.secret_forms({"secret_placeholders": {"pw": "s'ecret"}})


def test_retry_delay_doubles_and_is_capped_at_ten_times_the_base():
    assert [pm.retry_delay(2, n) for n in range(6)] == [2, 4, 8, 16, 20, 20]
    assert pm.retry_delay(0, 3) == 0


def test_settings_refuse_negative_retries_and_unknown_modes():
    with pytest.raises(DbopsError, match="check option lock_retries: -2 is negative"):
        pm.Settings(path="x", lock_retries=-2)
    with pytest.raises(DbopsError, match="check option lock_retry_delay"):
        pm.Settings(path="x", lock_retry_delay=-1)
    with pytest.raises(DbopsError, match="check option mode: 'drop' is not one of migrate, verify"):
        pm.Settings(path="x", mode="drop")
    with pytest.raises(DbopsError, match="check option applied_detail: 'all' is not one of compact, full"):
        pm.Settings.from_params({"path": "x", "applied_detail": "all"})
    assert pm.Settings.from_params({"path": "x"}).applied_detail == "compact"


def test_diff_shows_the_steps_left_out_of_a_compact_result():
    steps = [{"action": "apply", "script": f"V{i}__x.sql"} for i in (1, 2, 9, 10)]
    after = pm.diff("0", "10", steps, omitted=6)["after"]
    assert after == ("version: 10\n# apply V1__x.sql\n# apply V2__x.sql\n"
                     "# ... 6 more steps (applied_detail=full lists them)\n"
                     "# apply V9__x.sql\n# apply V10__x.sql\n")


def test_batch_groups_keep_order_and_bounds():
    # None runs alone and splits the batches around it.
    assert pm.batch_groups([1, 1, None, 1, 1, 1], max_count=10, max_bytes=100) == [[0, 1], [2], [3, 4, 5]]
    assert pm.batch_groups([1] * 5, max_count=2, max_bytes=100) == [[0, 1], [2, 3], [4]]
    assert pm.batch_groups([60, 50, 40, 10], max_count=10, max_bytes=100) == [[0], [1, 2, 3]]
    # A migration bigger than the byte bound goes alone, never dropped.
    assert pm.batch_groups([500, 1, 1], max_count=10, max_bytes=100) == [[0], [1, 2]]
    assert pm.batch_groups([None, None], max_count=10, max_bytes=100) == [[0], [1]]
    assert pm.batch_groups([]) == []
    flat = [i for group in pm.batch_groups([3, None, 7, 7, 7, None, 1] * 30, max_count=4, max_bytes=15)
            for i in group]
    assert flat == list(range(210))


def test_batched_transaction_message_checks_the_lock_after_the_history_lock():
    statements = pm._pg_script.split("CREATE TABLE t (id int);", "V1__t.sql")
    guard = pm.lock_guard(4242)
    assert f"1 / (NOT pg_try_advisory_xact_lock({pm.RUN_LOCK_CLASS_ID}, 4242))::int" in guard
    assert f"set_config('{pm.STARTED_SETTING}', clock_timestamp()::text, true)" in guard
    message = pm.transaction_message('"public"."h"', statements, "INSERT INTO h VALUES (1)", guard=guard)
    assert message.text.startswith('BEGIN;\nLOCK TABLE "public"."h" IN SHARE ROW EXCLUSIVE MODE;\n' + guard)
    assert message.text.endswith("INSERT INTO h VALUES (1);\nCOMMIT;")
    start, end, _statement, number = message.spans[0]
    assert message.text[start:end] == "CREATE TABLE t (id int);" and number == 1
    # An error in the guard is reported as happening while locking, not in the migration.
    assert message.prefix_end == start
    assert message.locate_failure("CREATE TABLE t (id int);", len("BEGIN;\n") + 40) == (
        " while locking the history table")
