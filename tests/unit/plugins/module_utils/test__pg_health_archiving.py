"""The WAL archiving health check (pg_stat_archiver), without a server."""

from __future__ import annotations

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_health_checks
from ansible_collections.dbops.datastores.plugins.module_utils._pg_health_checks import PG_THRESHOLDS


def archiver(**overrides):
    facts = {"archive_mode": "on", "archived_count": 10, "last_archived_wal": "000000010000000000000009",
             "last_archived_seconds_ago": 30.0, "failed_count": 0, "last_failed_wal": None,
             "last_failed_seconds_ago": None}
    facts.update(overrides)
    return {"archiver": facts}


def check(facts, **thresholds):
    return _pg_health_checks._pg_wal_archiving(facts, {**PG_THRESHOLDS, **thresholds})


def test_healthy_archiving_is_ok():
    assert check(archiver()).status == "ok"
    assert check(archiver()).findings == []


@pytest.mark.parametrize("facts, reason", [
    ({}, "pg_stat_archiver not read"),
    (archiver(archive_mode="off"), "archive_mode is off"),
])
def test_skipped_without_archiving(facts, reason):
    result = check(facts)
    assert (result.status, result.reason) == ("skipped", reason)


def test_last_failure_newer_than_last_success_is_critical():
    result = check(archiver(failed_count=7, last_failed_wal="00000001000000000000000A",
                            last_failed_seconds_ago=5.0, last_archived_seconds_ago=600.0))
    assert result.status == "critical"
    [finding] = result.findings
    assert finding.check == "wal_archiving" and finding.severity == "critical"
    assert finding.message == ("archiving WAL fails: segment 00000001000000000000000A failed 5 s ago "
                               "(last success 10 min ago; 7 failures since the statistics reset)")
    assert "pgbackrest --stanza=<stanza> check" in finding.fix
    assert finding.value == 7


def test_never_archived_and_failing_is_critical():
    result = check(archiver(archived_count=0, last_archived_seconds_ago=None, failed_count=3,
                            last_failed_wal="000000010000000000000001", last_failed_seconds_ago=2.0))
    assert result.status == "critical"
    assert "(never archived; 3 failures" in result.findings[0].message


def test_recent_failure_that_recovered_is_a_warning_and_an_old_one_is_ok():
    recovered = archiver(failed_count=2, last_failed_wal="000000010000000000000008",
                         last_failed_seconds_ago=300.0, last_archived_seconds_ago=30.0)
    result = check(recovered)
    assert result.status == "warning"
    assert result.findings[0].message == ("archiving WAL failed 5 min ago (segment 000000010000000000000008) "
                                          "and recovered; 2 failures since the statistics reset")
    assert check(recovered, archive_failure_recent_seconds=60).status == "ok"


def test_the_check_is_registered_for_pg_health_info():
    assert "wal_archiving" in [item.id for item in _pg_health_checks.PG_CHECKS]
    assert PG_THRESHOLDS["archive_failure_recent_seconds"] == 3600
