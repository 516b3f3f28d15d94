"""Modules against a primary and its streaming standby: who is a standby of whom, migrations refused
on the standby, backups taken from the standby, replication seen from the primary."""

from __future__ import annotations

import json
import time
import uuid

from tests.harness import backups as bk


def wait_replayed(primary, standby, timeout: float = 20) -> None:
    """Until the standby replayed everything the primary has written so far."""
    target = primary.query("SELECT pg_current_wal_lsn()::text")[0][0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if standby.query("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,))[0][0]:
            return
        time.sleep(0.1)
    raise AssertionError(f"the standby did not replay {target}")


def test_replication_info_keeps_a_standby_and_refuses_other_data(ansible, pg_pair, pg_server, tmp_path):
    primary, standby = pg_pair
    passfile = tmp_path / "replication.pgpass"
    passfile.write_text(f"*:*:*:{primary.user}:{primary.password}\n")
    passfile.chmod(0o600)
    common = {"bin_dir": "/usr/lib/postgresql/15/bin", "login_host": primary.host,
              "login_port": primary.port, "login_user": primary.user, "passfile": str(passfile)}

    kept = ansible.module("pg_replication_info", {"data_directory": str(standby.datadir), **common})
    assert kept.get("failed") is not True, kept
    assert kept["changed"] is False
    assert kept["decision"]["action"] == "none"
    assert kept["local"]["standby_signal"] is True
    assert kept["local"]["cluster_state"] == "in archive recovery"
    assert kept["local"]["checkpoint_lsn"]
    assert kept["primary"]["system_identifier"] == kept["local"]["system_identifier"]
    # the same healthy standby, rebuilt on request (pitr_restore.yml, after the primary's restore)
    forced = ansible.module("pg_replication_info",
                            {"data_directory": str(standby.datadir), "force_rebuild": True, **common})
    assert forced["changed"] is False
    assert forced["decision"]["action"] == "rebuild"
    assert "postgresql_replication_force_rebuild" in forced["decision"]["reason"]

    # The primary's own directory: same system, not a standby (what a former primary looks like).
    former = ansible.module("pg_replication_info", {"data_directory": str(primary.datadir), **common})
    assert former["decision"]["action"] == "refuse"
    assert "former or promoted primary" in former["decision"]["reason"]

    # Another cluster's data directory: a different system identifier.
    if pg_server.datadir is not None:
        foreign = ansible.module("pg_replication_info", {"data_directory": str(pg_server.datadir), **common})
        assert foreign["decision"]["action"] == "refuse"
        assert "different system" in foreign["decision"]["reason"]
        allowed = ansible.module("pg_replication_info",
                                 {"data_directory": str(pg_server.datadir), "allow_rebuild": True, **common})
        assert allowed["decision"]["action"] == "rebuild"

    # The primary unreachable: a clear error naming the target, nothing decided.
    down = ansible.module("pg_replication_info", {"data_directory": str(standby.datadir),
                                                  **{**common, "login_port": 1}})
    assert down["failed"] is True
    assert "connect to PostgreSQL at" in down["msg"] and ":1/" in down["msg"]
    assert "decision" not in down


def test_migrate_on_a_standby_fails_as_read_only_and_writes_nothing(ansible, pg_pair, tmp_path):
    primary, standby = pg_pair
    db = f"m_{uuid.uuid4().hex[:8]}"
    primary.query(f'CREATE DATABASE "{db}"')
    try:
        wait_replayed(primary, standby)
        migrations = tmp_path / "migrations"
        migrations.mkdir()
        (migrations / "V1__create.sql").write_text("CREATE TABLE t_standby (id int);\n")
        for check in (True, False):
            result = ansible.module("pg_migrate", standby.params(login_db=db, path=str(migrations)),
                                    check=check)
            assert result["failed"] is True, result
            assert "read-only standby" in result["msg"], result["msg"]
        # Nothing on the primary either (the module never reached it); nothing to replay.
        tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        assert primary.query(tables, dbname=db) == [(0,)]
        assert standby.query(tables, dbname=db) == [(0,)]
        applied = ansible.module("pg_migrate", primary.params(login_db=db, path=str(migrations)))
        assert applied.get("failed") is not True, applied
        wait_replayed(primary, standby)
        assert standby.query("SELECT count(*) FROM t_standby", dbname=db) == [(0,)]
    finally:
        primary.query(f'DROP DATABASE "{db}" WITH (FORCE)')


def test_backup_from_the_standby_round_trips_and_records_the_node(ansible, pg_pair, tmp_path):
    primary, standby = pg_pair
    db = f"b_{uuid.uuid4().hex[:8]}"
    target = f"r_{uuid.uuid4().hex[:8]}"
    primary.query(f'CREATE DATABASE "{db}"')
    try:
        bk.create_pg_seed(primary, db)
        wait_replayed(primary, standby)
        root = tmp_path / "backups"
        root.mkdir(mode=0o700)
        taken = ansible.module("pg_backup", standby.params(root=str(root), database=db,
                                                           **{"from": "standby"}))
        assert taken.get("failed") is not True, taken
        assert taken["changed"] is True
        backup_id = taken["backup"]["id"]
        manifest = json.loads((root / backup_id / "manifest.json").read_text())
        source = manifest["source"]
        assert source["role"] == "standby" and source["from"] == "standby"
        assert source["cluster_name"] == "standby_a"
        assert source["hot_standby_feedback"] is True
        replay = standby.query("SELECT %s::pg_lsn <= pg_last_wal_replay_lsn()", (source["replay_lsn"],))
        assert replay == [(True,)]
        assert taken["backup"]["source"]["replay_lsn"] == source["replay_lsn"]

        restored = ansible.module("pg_restore", primary.params(root=str(root), backup=backup_id,
                                                               database=target, create=True))
        assert restored.get("failed") is not True, restored
        restored_snapshot, original = bk.pg_snapshot(primary, target), bk.pg_snapshot(primary, db)
        # A standby sees sequences at the value the primary pre-logged to WAL (up to 32 ahead), so
        # restored sequences may skip values but never hand out one that is already used.
        restored_seqs, original_seqs = restored_snapshot.pop("_sequences"), original.pop("_sequences")
        assert restored_snapshot == original
        assert [seq[0] for seq in restored_seqs] == [seq[0] for seq in original_seqs]
        for (name, value), before_seq in zip(restored_seqs, original_seqs):
            before = before_seq[1]
            assert before <= value <= before + 32, name
    finally:
        primary.query(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        primary.query(f'DROP DATABASE "{db}" WITH (FORCE)')


def test_backup_from_the_primary_records_its_wal_position(ansible, pg_pair, tmp_path):
    primary, _standby = pg_pair
    db = f"p_{uuid.uuid4().hex[:8]}"
    primary.query(f'CREATE DATABASE "{db}"')
    try:
        root = tmp_path / "backups"
        root.mkdir(mode=0o700)
        taken = ansible.module("pg_backup", primary.params(root=str(root), database=db))
        assert taken.get("failed") is not True, taken
        source = taken["backup"]["source"]
        assert source["role"] == "primary" and "replay_lsn" not in source
        assert primary.query("SELECT %s::pg_lsn <= pg_current_wal_lsn()", (source["wal_lsn"],)) == [(True,)]
    finally:
        primary.query(f'DROP DATABASE "{db}" WITH (FORCE)')


def test_health_on_the_primary_reports_the_standby_lag_and_slot(ansible, pg_pair):
    primary, standby = pg_pair
    primary.query("CREATE TABLE IF NOT EXISTS ticks_h (n int); INSERT INTO ticks_h VALUES (1)")
    wait_replayed(primary, standby)
    result = ansible.module("pg_health_info", primary.params())
    assert result.get("failed") is not True, result
    replication = result["replication"]
    assert replication["role"] == "primary"
    replicas = {r["application_name"]: r for r in replication["replicas"]}
    assert list(replicas) == ["standby_a"]
    assert replicas["standby_a"]["state"] == "streaming"
    assert isinstance(replicas["standby_a"]["lag_bytes"], int) and replicas["standby_a"]["lag_bytes"] >= 0
    slots = {s["slot_name"]: s for s in replication["slots"]}
    assert slots["standby_a"]["active"] is True
    assert isinstance(slots["standby_a"]["retained_bytes"], int) and slots["standby_a"]["retained_bytes"] >= 0
    # Lag in seconds: pg_stat_replication's replay_lag (NULL once an idle standby caught up).
    seconds = replicas["standby_a"]["replay_lag_seconds"]
    assert seconds is None or 0 <= seconds < 60, seconds
    checks = {c["id"]: c for c in result["checks"]}
    assert checks["standby_streaming"]["status"] == "ok"

    # The standby's own view: its replay delay in seconds and bytes, and its WAL receiver streaming.
    own = ansible.module("pg_health_info", standby.params())
    assert own.get("failed") is not True, own
    assert own["replication"]["role"] == "standby"
    mine = own["replication"]["standby"]
    assert mine["wal_receiver_status"] == "streaming"
    assert isinstance(mine["replay_lag_seconds"], (int, float)) and mine["replay_lag_seconds"] >= 0
    assert isinstance(mine["lag_bytes"], int) and mine["lag_bytes"] >= 0
    assert {c["id"]: c for c in own["checks"]}["standby_streaming"]["status"] == "ok"
