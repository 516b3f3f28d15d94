"""The backup job option ``from`` on a primary and its standby: the module refuses the wrong node and
writes nothing; dbops-backup (the cron command, the same config on every node) takes each job only
on the node it belongs to, asking the server, and never restore-tests on the read-only standby."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from tests.harness import backups as bk
from tests.integration.replication.test_pg_replication import wait_replayed


@pytest.fixture
def pair_db(pg_pair):
    primary, standby = pg_pair
    db = f"f_{uuid.uuid4().hex[:8]}"
    primary.query(f'CREATE DATABASE "{db}"')
    bk.create_pg_seed(primary, db, rows=200)
    wait_replayed(primary, standby)
    yield db
    primary.query(f'DROP DATABASE "{db}" WITH (FORCE)')


def _cli(config, *args):
    proc = subprocess.run(bk.cli_command(*args, "--config", str(config)), env=bk.cli_env(),
                          capture_output=True, text=True, timeout=300, check=False)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout + proc.stderr
    return proc.returncode, json.loads(lines[0])


def _node_config(tmp_path, name, server, jobs):
    """One node's backup root and config, as the db_backup role writes it on every node."""
    root = tmp_path / name / "backups"
    root.mkdir(parents=True, mode=0o700)
    config = tmp_path / name / "backup.json"
    config.write_text(json.dumps({"root": str(root), "postgres": server.params(), "backups": jobs,
                                  "verify": {"restore_test": True}}))
    config.chmod(0o600)
    return root, config


@pytest.mark.parametrize("check", [True, False])
def test_the_module_refuses_the_wrong_node_and_writes_nothing(ansible, pg_pair, pair_db, tmp_path, check):
    primary, standby = pg_pair
    root = tmp_path / "backups"
    root.mkdir(mode=0o700)
    for server, wanted, role in ((primary, "standby", "the primary"), (standby, "primary", "a standby")):
        params = server.params(root=str(root), database=pair_db, **{"from": wanted})
        result = ansible.module("pg_backup", params, check=check)
        assert result["failed"] is True, result
        prefix = f"back up PostgreSQL database {pair_db} from {wanted}: "
        assert result["msg"].startswith(prefix), result["msg"]
        assert f"is {role}" in result["msg"], result["msg"]
        assert bk.entries(root) == []
    # prefer_standby: the primary has a streaming standby, so it is not the node either.
    refused = ansible.module("pg_backup", primary.params(root=str(root), database=pair_db,
                                                         **{"from": "prefer_standby"}), check=check)
    assert refused["failed"] is True and "1 standby(s) are connected" in refused["msg"], refused
    taken = ansible.module("pg_backup", standby.params(root=str(root), database=pair_db,
                                                       **{"from": "prefer_standby"}), check=check)
    assert taken.get("failed") is not True, taken
    assert taken["changed"] is True and taken["plan"]["from"] == "prefer_standby"
    if check:
        assert bk.entries(root) == []
    else:
        source = taken["backup"]["source"]
        assert source["role"] == "standby" and source["from"] == "prefer_standby"
        assert source["replay_lsn"] and source["hot_standby_feedback"] is True
        assert source["max_standby_streaming_delay"]
        assert len(bk.entries(root)) == 1


def test_dbops_backup_takes_each_job_on_its_node_only(pg_pair, pair_db, tmp_path):
    primary, standby = pg_pair
    jobs = [{"engine": "postgresql", "database": pair_db, "from": "standby"},
            {"engine": "postgresql", "database": pair_db, "from": "primary", "format": "plain"}]
    # Inventory order is not involved: both nodes get the same jobs, each asks its server.
    roots, configs = {}, {}
    for name, server in (("standby", standby), ("primary", primary)):
        roots[name], configs[name] = _node_config(tmp_path, name, server, jobs)

    code, line = _cli(configs["standby"], "backup")
    assert code == 0, line
    taken, skipped = line["backups"]
    assert taken["ok"] is True and taken["created"] is True
    assert skipped["ok"] is True and skipped["other_node"] is True
    assert "is a standby (in recovery) and the job runs from the primary" in skipped["skipped"]
    manifest = json.loads((roots["standby"] / taken["id"] / "manifest.json").read_text())
    assert manifest["format"] == "custom"
    assert manifest["source"]["role"] == "standby" and manifest["source"]["from"] == "standby"
    assert standby.query("SELECT %s::pg_lsn <= pg_last_wal_replay_lsn()",
                         (manifest["source"]["replay_lsn"],)) == [(True,)]

    code, line = _cli(configs["primary"], "backup")
    assert code == 0, line
    skipped, taken = line["backups"]
    assert "is the primary (not in recovery) and the job runs from a standby" in skipped["skipped"]
    assert taken["created"] is True
    manifest = json.loads((roots["primary"] / taken["id"] / "manifest.json").read_text())
    assert manifest["format"] == "plain" and manifest["source"]["role"] == "primary"

    # --ignore-from (the pre-migration backup on the primary): every job is taken here.
    code, line = _cli(configs["primary"], "backup", "--ignore-from")
    assert code == 0, line
    assert [b.get("created") for b in line["backups"]] == [True, True]

    # verify --restore-test on the standby: files checked, no restore on a read-only server.
    code, line = _cli(configs["standby"], "verify", "--restore-test")
    assert code == 0, line
    record = line["verifications"][0]
    assert record["ok"] is True and record["kind"] == "files"
    assert "read-only standby" in record["restore_test_skipped"]

    # On the primary the standby's job left nothing here before --ignore-from; the restore test runs.
    code, line = _cli(configs["primary"], "verify", "--restore-test")
    assert code == 0, line
    assert [v["kind"] for v in line["verifications"]] == ["restore"]
