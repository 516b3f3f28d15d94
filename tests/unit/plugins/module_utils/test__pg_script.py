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
