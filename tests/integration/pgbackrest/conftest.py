"""One PostgreSQL cluster archiving into an encrypted local pgBackRest repository, with a full and an
incremental backup and two markers written on either side of a known moment (the PITR target)."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.harness import pgbackrest as pgbr_harness


@dataclass
class PitrStanza:
    stanza: pgbr_harness.PgbrStanza
    target: dt.datetime          # between the two markers
    before_commit: dt.datetime   # the "before" marker's commit
    after_commit: dt.datetime    # the "after" marker's commit


def _now(stanza: pgbr_harness.PgbrStanza) -> dt.datetime:
    return stanza.server.query("SELECT clock_timestamp()")[0][0].astimezone(dt.timezone.utc)


@pytest.fixture(scope="session")
def pitr_stanza() -> Iterator[PitrStanza]:
    if os.environ.get("DBOPS_TEST_PG_DSN"):
        pytest.skip("the pgBackRest stanza is always local (DBOPS_TEST_PG_DSN is set)")
    stanza = pgbr_harness.start_stanza()
    try:
        server = stanza.server
        server.query("CREATE TABLE pitr_markers (name text PRIMARY KEY, "
                     "at timestamptz DEFAULT clock_timestamp())")
        server.query("CREATE TABLE filler AS SELECT g AS id, md5(g::text) AS v "
                     "FROM generate_series(1, 20000) g")
        stanza.backup("full")
        server.query("UPDATE filler SET v = md5(v) WHERE id % 100 = 0")
        stanza.backup("incr")
        server.query("INSERT INTO pitr_markers (name) VALUES ('before')")
        before = _now(stanza)
        time.sleep(1.2)
        target = _now(stanza)
        time.sleep(1.2)
        server.query("INSERT INTO pitr_markers (name) VALUES ('after')")
        after = _now(stanza)
        stanza.switch_wal()
        yield PitrStanza(stanza, target, before, after)
    finally:
        pgbr_harness.stop_stanza(stanza)
