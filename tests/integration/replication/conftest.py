"""A primary and a streaming standby (pg_basebackup into the physical slot ``standby_a``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.harness import pg as pg_harness
from tests.harness import replication


@pytest.fixture(scope="session")
def pg_pair() -> Iterator[tuple[pg_harness.PgServer, pg_harness.PgServer]]:
    if os.environ.get("DBOPS_TEST_PG_DSN"):
        pytest.skip("the replication pair is always local (DBOPS_TEST_PG_DSN is set)")
    primary = pg_harness.start_cluster()
    standby = None
    try:
        primary.query("SELECT pg_create_physical_replication_slot('standby_a')")
        standby = replication.start_standby(primary, slot="standby_a")
        # What the postgresql role sets on every member: long queries on the standby (pg_dump)
        # hold back VACUUM on the primary instead of being cancelled by recovery conflicts.
        standby.query("ALTER SYSTEM SET hot_standby_feedback = on")
        standby.query("SELECT pg_reload_conf()")
        yield primary, standby
    finally:
        if standby is not None:
            pg_harness.stop_cluster(standby)
        pg_harness.stop_cluster(primary)
