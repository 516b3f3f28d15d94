"""pg_health_info's wal_archiving finding on a cluster whose archive_command fails, then recovers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.harness import pg as pg_harness


@pytest.fixture(scope="module")
def failing_archiver() -> Iterator[pg_harness.PgServer]:
    if os.environ.get("DBOPS_TEST_PG_DSN"):
        pytest.skip("needs a local cluster with its own archive_command")
    server = pg_harness.start_cluster(settings={"archive_mode": "on", "archive_command": "'/bin/false'"})
    yield server
    pg_harness.stop_cluster(server)


def _wait(server, sql, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not server.query(sql)[0][0]:
        assert time.monotonic() < deadline, f"timed out waiting for: {sql}"
        time.sleep(0.3)


def _archiving(result):
    return next(c for c in result["checks"] if c["id"] == "wal_archiving")


def test_failing_archive_command_is_critical_then_recovered_warns(ansible, failing_archiver):
    server = failing_archiver
    server.query("SELECT pg_logical_emit_message(false, 'dbops-test', 'x')")
    server.query("SELECT pg_switch_wal()")
    _wait(server, "SELECT failed_count >= 1 FROM pg_stat_archiver")

    result = ansible.module("pg_health_info", server.params())
    assert not result.get("failed"), result.get("msg")
    assert result["archiver"]["failed_count"] >= 1
    assert result["archiver"]["archived_count"] == 0
    check = _archiving(result)
    assert check["status"] == "critical"
    [finding] = [f for f in result["findings"] if f["check"] == "wal_archiving"]
    assert finding["severity"] == "critical"
    failed_wal = result["archiver"]["last_failed_wal"]
    assert finding["message"].startswith(f"archiving WAL fails: segment {failed_wal} failed ")
    assert "(never archived;" in finding["message"]
    assert result["status"] == "critical"

    # Archiving works again: the failure is history, but recent, so a warning.
    server.query("ALTER SYSTEM SET archive_command = '/bin/true'")
    server.query("SELECT pg_reload_conf()")
    _wait(server, "SELECT archived_count >= 1 AND last_archived_time > last_failed_time "
                  "FROM pg_stat_archiver")
    result = ansible.module("pg_health_info", server.params())
    assert _archiving(result)["status"] == "warning"
    [finding] = [f for f in result["findings"] if f["check"] == "wal_archiving"]
    assert "and recovered;" in finding["message"]
    # Older than the window: ok.
    result = ansible.module("pg_health_info",
                            server.params(thresholds={"archive_failure_recent_seconds": 0.001}))
    assert _archiving(result)["status"] == "ok"
