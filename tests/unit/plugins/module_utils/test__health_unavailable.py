"""A check the server's version cannot evaluate is skipped with the reason the facts give."""

from __future__ import annotations

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_health, _pg_health_checks


def _facts_with_a_lock_wait(version_num):
    return {
        "server": {"version_num": version_num},
        "locks": {"blocked": [{"pid": 7, "blocked_by": [3], "database": "app", "wait_seconds": None,
                               "query": "SELECT 1"}]},
        "unavailable_checks": _pg_health.version_skips(version_num),
    }


def test_lock_waits_on_13_is_skipped_with_the_reason_not_ok():
    result = _pg_health_checks.evaluate_pg(_facts_with_a_lock_wait(130023))
    check = next(c for c in result["checks"] if c["id"] == "lock_waits")
    assert check["status"] == "skipped"
    assert "pg_locks.waitstart is new in 14" in check["reason"]


def test_lock_waits_on_14_is_evaluated():
    facts = _facts_with_a_lock_wait(140000)
    facts["locks"]["blocked"][0]["wait_seconds"] = 600.0
    result = _pg_health_checks.evaluate_pg(facts)
    check = next(c for c in result["checks"] if c["id"] == "lock_waits")
    assert check["status"] == "critical"
