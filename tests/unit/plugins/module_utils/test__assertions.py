from __future__ import annotations

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _assertions as a
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError


@pytest.mark.parametrize("rows, problem", [
    ([(True,)], None),
    ([(False,)], "returned False, expected true"),
    ([(None,)], "returned None, expected true"),
    ([(1,)], "returned 1, expected true"),
    ([], "expected one row with one boolean, got 0 row(s)"),
    ([(True,), (True,)], "expected one row with one boolean, got 2 row(s) of 1 column(s)"),
    ([(True, True)], "expected one row with one boolean, got 1 row(s) of 2 column(s)"),
])
def test_judge_rows(rows, problem):
    assert a.judge_rows(rows) == problem


def test_judge_count():
    assert a.judge_count(3, 3) is None
    assert a.judge_count(2, 0) == "counted 2 document(s), expected 0"


def test_validate_reports_every_problem():
    with pytest.raises(DbopsError) as err:
        a.validate([{"name": "x", "sql": "SELECT true"}, {"name": "x", "sql": "SELECT 1"}, {"sql": "s"},
                    {"name": "y"}], ["sql"])
    assert err.value.details["problems"] == ["two assertions are named 'x'", "assertion 3 has no name",
                                             "assertion y has no sql"]


def test_run_all_runs_every_assertion_and_names_the_failures():
    def check(item):
        if item["name"] == "boom":
            raise DbopsError("ERROR:  relation \"nope\" does not exist")
        return None if item["name"] == "good" else "returned False, expected true"

    results = a.run_all([{"name": "good"}, {"name": "bad"}, {"name": "boom"}], check)
    assert [r["ok"] for r in results] == [True, False, False]
    with pytest.raises(DbopsError) as err:
        a.raise_failures(results, "PostgreSQL database app")
    assert err.value.msg == ("assert PostgreSQL database app: 2 of 3 assertion(s) failed: bad: returned"
                             " False, expected true; boom: ERROR:  relation \"nope\" does not exist")
    assert err.value.details["failed_assertions"] == ["bad", "boom"]
    a.raise_failures(results[:1], "x")  # nothing failed: no error
