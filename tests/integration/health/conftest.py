"""Fixtures of the health tests: a cluster with pg_stat_statements preloaded, monitor logins,
and background sessions that create the conditions the checks look for."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import pg as pg_harness
from tests.harness import replication

# Where the MongoDB test server differs from mongod in what the health module reads
# (the general list is tests/harness/mongo.py KNOWN_DIFFERENCES):
MONGO_HEALTH_DIFFERENCES = {
    "connections_available_zero": "serverStatus reports connections.available = 0 (meaning unbounded); "
    "the facts say the limit is not reported and the connections check is skipped, not 100% in use",
    "op_running_time_zero": "currentOp reports secs_running and microsecs_running as 0 for running "
    "operations, so only a threshold of 0 selects them",
    "thin_server_status": "no wiredTiger or globalLock sections: cache and queue checks are skipped",
}


@pytest.fixture(scope="session")
def pg_stats_server(pg_major: int) -> Iterator[pg_harness.PgServer]:
    """A cluster started with pg_stat_statements in shared_preload_libraries."""
    if os.environ.get("DBOPS_TEST_PG_DSN"):
        pytest.skip("the pg_stat_statements cluster is always local (DBOPS_TEST_PG_DSN is set)")
    server = pg_harness.start_cluster(
        settings={
            "shared_preload_libraries": "'pg_stat_statements'",
            "pg_stat_statements.track": "all",
        },
        major=pg_major,
    )
    yield server
    pg_harness.stop_cluster(server)


def make_monitor(server: pg_harness.PgServer) -> tuple[str, str]:
    """A login role that is only a pg_monitor member (what db_monitoring creates)."""
    role, password = f"mon_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    server.query(f"CREATE ROLE {role} LOGIN PASSWORD %s IN ROLE pg_monitor", [password])
    return role, password


@pytest.fixture
def pg_monitor(pg_server: pg_harness.PgServer) -> Iterator[dict[str, Any]]:
    role, password = make_monitor(pg_server)
    yield pg_server.params(login_user=role, login_password=password)
    pg_server.query(f"DROP OWNED BY {role}; DROP ROLE {role}")


def wait_until(
    server: pg_harness.PgServer, sql: str, args: Any = None, dbname: str | None = None, timeout: float = 20
) -> None:
    """Poll ``server`` until ``sql`` returns true (the condition exists)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.query(sql, args, dbname=dbname)[0][0]:
            return
        time.sleep(0.1)
    raise AssertionError(f"condition not reached: {sql} {args}")


class Background:
    """Sessions that run in threads while a module looks at the server; stopped at teardown."""

    def __init__(self, server: pg_harness.PgServer) -> None:
        self.server = server
        self.conns: list[Any] = []
        self.threads: list[threading.Thread] = []

    def session(self, dbname: str) -> Any:
        conn = self.server.connect(dbname, autocommit=False)
        self.conns.append(conn)
        return conn

    def pid(self, conn: Any) -> int:
        return conn.get_backend_pid()

    def run(self, conn: Any, sql: str) -> None:
        """Start ``sql`` on ``conn`` in a thread (it may block or sleep)."""

        def target() -> None:
            with contextlib.suppress(Exception), conn.cursor() as cur:
                cur.execute(sql)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self.threads.append(thread)

    def wait_until(self, sql: str, args: Any, dbname: str | None = None, timeout: float = 20) -> None:
        wait_until(self.server, sql, args, dbname, timeout)

    def stop(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(Exception):
                conn.cancel()
        for thread in self.threads:
            thread.join(10)
        for conn in self.conns:
            with contextlib.suppress(Exception):
                conn.close()


@pytest.fixture
def background(pg_server: pg_harness.PgServer) -> Iterator[Background]:
    bg = Background(pg_server)
    yield bg
    bg.stop()


@pytest.fixture(scope="session")
def pg_primary_standby(pg_major: int) -> Iterator[tuple[pg_harness.PgServer, pg_harness.PgServer]]:
    """A primary and a streaming standby made with pg_basebackup (physical slot ``standby1``)."""
    if os.environ.get("DBOPS_TEST_PG_DSN"):
        pytest.skip("the replication pair is always local (DBOPS_TEST_PG_DSN is set)")
    primary = pg_harness.start_cluster(major=pg_major)
    standby = None
    try:
        primary.query("SELECT pg_create_physical_replication_slot('standby1')")
        standby = replication.start_standby(primary)
        yield primary, standby
    finally:
        if standby is not None:
            pg_harness.stop_cluster(standby)
        pg_harness.stop_cluster(primary)
