"""Statement shapes: no literal value of a query reaches health results or reports."""

from __future__ import annotations

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _query_text as qt


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("SELECT pg_sleep(120)", "SELECT pg_sleep($1)"),
        ("UPDATE users SET password = 'hunter''2' WHERE id = 42",
         "UPDATE users SET password = $1 WHERE id = $2"),
        ("SELECT E'a\\'b', x'0F', 1.5e3, .5 FROM t1", "SELECT $1, $2, $3, $4 FROM t1"),
        ("SELECT $$secret$$ || $tag$more$tag$", "SELECT $1 || $2"),
        ("SELECT * FROM t WHERE a = $1 AND b = 'x'", "SELECT * FROM t WHERE a = $1 AND b = $2"),
        ('SELECT "col 1", "we""ird" FROM "T2" -- token abc\n WHERE z = 3',
         'SELECT "col 1", "we""ird" FROM "T2" WHERE z = $1'),
        ("ALTER ROLE app PASSWORD 'x' /* rotate 2026 */", "ALTER ROLE app PASSWORD $1"),
        ("SELECT 'unterminated", "SELECT $1"),
        (None, None),
    ],
)
def test_sql_shape_replaces_literals_and_drops_comments(text, shape):
    assert qt.sql_shape(text) == shape


def test_sql_shape_is_cut():
    shape = qt.sql_shape("SELECT " + ", ".join(f"col{i}" for i in range(200)))
    assert len(shape) == qt.SHAPE_LIMIT and shape.endswith("...")


def test_mongo_command_shape_keeps_keys_only():
    command = {"aggregate": "events", "pipeline": [{"$match": {"card": "4111-1111", "n": {"$gt": 5}}}],
               "lsid": {"id": "abc"}, "$db": "shop"}
    text = qt.mongo_command_shape(command)
    assert "4111" not in text and "abc" not in text and "shop" not in text
    assert text == str({"aggregate": "events", "pipeline": [{"$match": {"card": "?", "n": {"$gt": "?"}}}],
                        "lsid": {"id": "?"}, "$db": "?"})


def test_shape_pg_facts_covers_every_query_field():
    facts = {"activity": {"long_running": [{"query": "SELECT 'a'"}],
                          "idle_in_transaction": [{"query": "SELECT 1"}]},
             "locks": {"blocked": [{"query": "DELETE FROM t WHERE x = 'b'"}]},
             "statements": {"slow": [{"query": "SELECT $1"}], "top_total_time": [{"query": "SELECT 'c'"}]}}
    qt.shape_pg_facts(facts)
    rows = (facts["activity"]["long_running"] + facts["activity"]["idle_in_transaction"]
            + facts["locks"]["blocked"] + facts["statements"]["slow"] + facts["statements"]["top_total_time"])
    assert [r["query"] for r in rows] == [
        "SELECT $1", "SELECT $1", "DELETE FROM t WHERE x = $1", "SELECT $1", "SELECT $1"]
