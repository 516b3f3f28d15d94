"""Replication decisions: when a standby's data directory is kept, rebuilt or refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _pg_replication
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError
from ansible_collections.dbops.datastores.plugins.module_utils._pg_replication import LocalState

PRIMARY = "7312345678901234567"
OTHER = "7300000000000000001"


def state(initialized=True, sysid=PRIMARY, standby=True, marker=False) -> LocalState:
    return LocalState("/var/lib/postgresql/15/main", initialized, sysid if initialized else None,
                      standby, marker)


def test_a_standby_of_the_primary_is_kept():
    decision = _pg_replication.decide_standby(state(), PRIMARY, allow_rebuild=False)
    assert decision.action == "none"
    # allow_rebuild never rebuilds a healthy standby
    assert _pg_replication.decide_standby(state(), PRIMARY, allow_rebuild=True).action == "none"


def test_force_rebuild_rebuilds_even_a_standby_of_the_primary():
    # after a point-in-time restore of the primary: same system, but a timeline it cannot follow
    decision = _pg_replication.decide_standby(state(), PRIMARY, allow_rebuild=True, force_rebuild=True)
    assert decision.action == "rebuild"
    assert "postgresql_replication_force_rebuild" in decision.reason
    assert _pg_replication.decide_standby(state(sysid=OTHER, standby=False), PRIMARY, False,
                                          force_rebuild=True).action == "rebuild"
    # without it the same standby is kept
    assert _pg_replication.decide_standby(state(), PRIMARY, True, force_rebuild=False).action == "none"


def test_an_empty_directory_and_the_roles_own_new_cluster_are_rebuilt():
    assert _pg_replication.decide_standby(state(initialized=False, standby=False), PRIMARY,
                                          False).action == "rebuild"
    assert _pg_replication.decide_standby(state(initialized=False, standby=False), None,
                                          False).action == "rebuild"
    fresh = state(sysid=OTHER, standby=False, marker=True)
    decision = _pg_replication.decide_standby(fresh, PRIMARY, False)
    assert decision.action == "rebuild"
    assert "created for this standby" in decision.reason


@pytest.mark.parametrize(
    ("local", "primary", "words"),
    [
        (state(sysid=OTHER, standby=False), PRIMARY, "different system 7300000000000000001"),
        (state(sysid=OTHER, standby=True), PRIMARY, "a standby of another cluster"),
        (state(sysid=PRIMARY, standby=False), PRIMARY, "former or promoted primary"),
        (state(sysid=OTHER, standby=False), None, "the primary has no cluster yet"),
    ],
)
def test_data_that_would_be_wiped_is_refused_unless_allowed(local, primary, words):
    decision = _pg_replication.decide_standby(local, primary, allow_rebuild=False)
    assert decision.action == "refuse"
    assert words in decision.reason
    assert "postgresql_replication_allow_rebuild" in decision.reason
    allowed = _pg_replication.decide_standby(local, primary, allow_rebuild=True)
    assert allowed.action == "rebuild"
    assert words in allowed.reason


def test_system_identifier_is_parsed_from_pg_controldata():
    text = (
        "pg_control version number:            1300\n"
        "Database system identifier:           7312345678901234567\n"
    )
    assert _pg_replication.parse_system_identifier(text) == PRIMARY
    with pytest.raises(DbopsError, match="printed no identifier"):
        _pg_replication.parse_system_identifier("garbage")


def test_local_state_reads_the_files_and_pg_controldata(tmp_path: Path):
    empty = _pg_replication.read_local_state(str(tmp_path / "missing"), "/nonexistent")
    assert not empty.initialized and empty.system_identifier is None
    # The real pg_controldata runs in tests/integration/modules/test_pg_replication_info.py.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "pg_controldata"
    tool.write_text(
        "#!/bin/sh\n"
        f"echo 'Database system identifier:           {PRIMARY}'\n"
        "echo 'Database cluster state:               shut down'\n"
        "echo 'Latest checkpoint location:           0/3000028'\n"
    )
    tool.chmod(0o755)
    datadir = tmp_path / "data"
    datadir.mkdir()
    (datadir / "PG_VERSION").write_text("15\n")
    (datadir / _pg_replication.NEW_CLUSTER_MARKER).touch()
    local = _pg_replication.read_local_state(str(datadir), str(bindir))
    assert local == LocalState(str(datadir), True, PRIMARY, False, True, "shut down", "0/3000028")
    tool.write_text("#!/bin/sh\necho 'could not open file' >&2\nexit 1\n")
    with pytest.raises(DbopsError, match="pg_controldata failed: could not open file"):
        _pg_replication.read_local_state(str(datadir), str(bindir))
