"""Statement splitting of PostgreSQL scripts (quotes, dollar quotes, comments, bodies)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_script as s
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError


def texts(script):
    return [st.text for st in s.split(script)]


def test_simple_statements_and_lines():
    script = "CREATE TABLE a (id int);\n\nINSERT INTO a VALUES (1);\n  SELECT 1"
    stmts = s.split(script)
    assert [x.text for x in stmts] == ["CREATE TABLE a (id int);", "INSERT INTO a VALUES (1);", "SELECT 1"]
    assert [x.line for x in stmts] == [1, 3, 4]
    assert stmts[2].offset == script.index("SELECT")
    assert stmts[0].words[:3] == ["CREATE", "TABLE", "A"]


def test_semicolons_in_quotes_and_comments_do_not_split():
    script = """
    INSERT INTO t VALUES ('a;b', 'it''s; fine', E'esc\\'; still', "we;ird");
    -- a comment; with a semicolon
    /* block; /* nested; */ still comment; */
    SELECT U&'d\\0061t;a', $$dollar; body$$, $fn$ inner $$ ; $fn$;
    """
    stmts = s.split(script)
    assert len(stmts) == 2
    assert stmts[0].text.startswith("INSERT") and stmts[0].text.endswith('"we;ird");')
    assert stmts[1].text.startswith("SELECT") and stmts[1].text.endswith("$fn$;")
    assert stmts[1].line == 5


def test_plpgsql_function_with_dollar_quotes():
    script = """CREATE FUNCTION f() RETURNS trigger AS $body$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$body$ LANGUAGE plpgsql;
CREATE TRIGGER t BEFORE UPDATE ON x FOR EACH ROW EXECUTE FUNCTION f();"""
    stmts = s.split(script)
    assert len(stmts) == 2
    assert stmts[1].line == 7


def test_sql_standard_function_body():
    script = """CREATE OR REPLACE FUNCTION add(a int, b int) RETURNS int
LANGUAGE SQL
BEGIN ATOMIC
  SELECT CASE WHEN a IS NULL THEN 0 ELSE a END + b;
  SELECT 1;
END;
SELECT add(1, 2);"""
    stmts = s.split(script)
    assert len(stmts) == 2
    assert stmts[0].text.endswith("END;")
    assert stmts[1].text == "SELECT add(1, 2);"


def test_begin_inside_parentheses_is_a_name_not_a_routine_body():
    # begin is an unreserved keyword: a parameter or RETURNS TABLE column may be named so. As in
    # psql, BEGIN opens a body only outside parentheses.
    script = ("CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n"
              "CREATE INDEX CONCURRENTLY i ON t (x);\nVACUUM t;")
    assert texts(script) == ["CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;",
                             "CREATE INDEX CONCURRENTLY i ON t (x);", "VACUUM t;"]
    stmts = s.split("CREATE FUNCTION g() RETURNS TABLE (begin int, x int) LANGUAGE sql\n"
                    "AS $$ SELECT 1, 2 $$;\nCOMMIT;\nSELECT 2;")
    assert len(stmts) == 3
    assert [(p[0].line, p[1]) for p in s.transaction_problems(stmts)] == [
        (3, "transaction control (COMMIT) is not allowed: each migration already runs in its own"
            " transaction"),
    ]
    # A BEGIN ATOMIC body with a parameter named begin and a CASE inside parentheses.
    script = """CREATE FUNCTION h(begin int) RETURNS int
LANGUAGE sql
BEGIN ATOMIC
  SELECT (CASE WHEN begin > 0 THEN 1 ELSE 0 END) + CASE begin WHEN 0 THEN 0 ELSE 1 END;
END;
SELECT h(1);"""
    stmts = s.split(script)
    assert [x.line for x in stmts] == [1, 6]
    assert stmts[0].text.endswith("END;")


def test_rule_with_parenthesised_actions():
    script = ("CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));"
              "\n"
              "SELECT 1;")
    assert len(s.split(script)) == 2


def test_comment_only_parts_are_dropped():
    assert s.split("-- nothing\n/* at all */\n;  ;") == []
    assert s.split("-- only a comment") == []
    assert texts("SELECT 1; -- trailing") == ["SELECT 1;"]


def test_positional_parameters_and_dollar_identifiers():
    script = "PREPARE p AS SELECT $1 + a$b FROM t$x;\nSELECT 2;"
    assert texts(script) == ["PREPARE p AS SELECT $1 + a$b FROM t$x;", "SELECT 2;"]


@pytest.mark.parametrize(("script", "what", "line"), [
    ("SELECT 1;\nSELECT 'oops;", "quoted string '", 2),
    ("SELECT 1;\n\nSELECT $x$ never closed", "dollar-quoted string $x$", 3),
    ("/* open /* nested */", "comment /*", 1),
    ('SELECT "ident', 'quoted identifier "', 1),
    ("SELECT E'\\'", "quoted string E'", 1),
])
def test_unterminated_tokens_are_reported_with_line(script, what, line):
    with pytest.raises(DbopsError) as info:
        s.split(script, "V1__x.sql")
    assert info.value.msg == f"parse V1__x.sql: unterminated {what} starting at line {line}"


def test_concurrently_detection():
    stmts = s.split(
        "CREATE UNIQUE INDEX CONCURRENTLY i ON t (a);\n"
        "SELECT 'CONCURRENTLY';\n"
        "-- CREATE INDEX CONCURRENTLY in a comment\n"
        "REFRESH MATERIALIZED VIEW CONCURRENTLY mv;\n"
        "DROP INDEX CONCURRENTLY i;\n"
        "VACUUM t;\n"
        "COMMIT;\n"
        "CREATE TABLE ok (a int);"
    )
    problems = s.transaction_problems(stmts)
    assert [(p[0].line, p[1]) for p in problems] == [
        (1, "CREATE UNIQUE INDEX CONCURRENTLY cannot run inside a transaction"),
        (5, "DROP INDEX CONCURRENTLY i cannot run inside a transaction"),
        (6, "VACUUM t cannot run inside a transaction"),
        (7, "transaction control (COMMIT) is not allowed: each migration already runs in its own"
            " transaction"),
    ]


def test_savepoints_are_allowed_and_prepare_transaction_is_refused():
    stmts = s.split(
        "SAVEPOINT a;\n"
        "ROLLBACK TO SAVEPOINT a;\n"
        "ROLLBACK TO a;\n"
        "rollback work to savepoint a;\n"
        "RELEASE SAVEPOINT a;\n"
        "RELEASE a;\n"
        "PREPARE transaction (int) AS SELECT $1;\n"
        "PREPARE TRANSACTION 'migration-1';\n"
        "ROLLBACK PREPARED 'migration-1';\n"
        "ROLLBACK;"
    )
    problems = s.transaction_problems(stmts)
    assert [(p[0].line, p[1]) for p in problems] == [
        (8, "transaction control (PREPARE TRANSACTION) is not allowed: each migration already runs in its"
            " own transaction (prepared, its changes would wait uncommitted while its history row commits)"),
        (9, "transaction control (ROLLBACK) is not allowed: each migration already runs in its own"
            " transaction"),
        (10, "transaction control (ROLLBACK) is not allowed: each migration already runs in its own"
             " transaction"),
    ]


COPY_REFUSED = ("COPY ... FROM STDIN is not supported (psql sends the lines after it, up to \\., as its data;"
                " a migration is SQL only): write the data as INSERT statements or COPY ... FROM a file on"
                " the database server")


def test_copy_from_stdin_with_inline_data_is_one_refused_statement():
    script = ("CREATE TABLE t (a int, b text);\n"
              "COPY t (a, b) FROM stdin WITH (FORMAT text);\n"
              "1\tit's; not SQL\n"
              "2\t\\N\n"
              "\\.\n"
              "SELECT 1;\n"
              "COPY (SELECT 1 FROM stdin) TO STDOUT;\n"
              "COPY t FROM '/srv/t.tsv';")
    stmts = s.split(script, "V1__x.sql")
    assert [x.line for x in stmts] == [1, 2, 6, 7, 8]
    assert stmts[1].text == "COPY t (a, b) FROM stdin WITH (FORMAT text);\n1\tit's; not SQL\n2\t\\N\n\\."
    assert [(p[0].line, p[1]) for p in s.meta_command_problems(stmts)] == [(2, COPY_REFUSED)]
    # Without the \. line psql reads the data up to the end of the file.
    stmts = s.split("COPY t FROM STDIN;\n1\t'open quote\n")
    assert len(stmts) == 1 and stmts[0].copy_stdin
    assert [p[1] for p in s.meta_command_problems(stmts)] == [COPY_REFUSED]


def test_plpgsql_begin_is_not_transaction_control():
    stmts = s.split("DO $$ BEGIN PERFORM 1; END $$;")
    assert s.transaction_problems(stmts) == []


def test_psql_meta_commands_are_flagged():
    stmts = s.split("SELECT 1;\n\\i other.sql\nSELECT '\\not meta';")
    problems = s.meta_command_problems(stmts)
    assert [(p[0].line, p[1]) for p in problems] == [
        (2, "psql meta-command \\i is not supported (plain SQL only)")
    ]


def test_line_of():
    assert s.line_of("a\nb\nc", 0) == 1
    assert s.line_of("a\nb\nc", 2) == 2
    assert s.line_of("a\nb\nc", 4) == 3


# A tiny generator of valid statements whose pieces contain semicolons in quoted places.
pieces = st.sampled_from([
    "'a;b'", "'it''s;'", "E'x\\';y'", '"col;umn"', "$$ ; $$", "$t$ ; $$ ; $t$", "/* ; */", "(1; 2)",
    "1", "abc", "$1", "-- ;\n",
])


@given(st.lists(st.lists(pieces, min_size=1, max_size=6), min_size=1, max_size=8))
def test_split_recovers_the_statements(bodies):
    statements = ["SELECT " + " ".join(parts) for parts in bodies]
    script = ";\n".join(statements) + ";"
    result = s.split(script)
    assert [x.text.rstrip(";") for x in result] == statements
    for stmt, expected in zip(result, statements):
        assert script[stmt.offset:].startswith(expected)
