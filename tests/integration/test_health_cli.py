"""dbops-backup health (the scheduled health run) against real servers: metrics files that parse."""

from __future__ import annotations

import json
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from tests.harness import backups as bk


def _run(config):
    proc = subprocess.run(bk.cli_command("health", "--config", str(config)), env=bk.cli_env(),
                          capture_output=True, text=True, timeout=300, check=False)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout + proc.stderr
    return proc.returncode, json.loads(lines[0])


def _samples(path):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(path.read_text()) for s in family.samples}


def test_health_run_writes_both_engines_and_reports_an_unreachable_one(
    pg_server, pg_db, mongo_server, tmp_path
):
    pg_server.query("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)", dbname=pg_db)
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    config = tmp_path / "health.json"
    config.write_text(json.dumps({
        "postgres": pg_server.params(),
        "mongodb": mongo_server.params(),
        "metrics": {"textfile_dir": str(textfiles)},
        "log_file": str(tmp_path / "health.log"),
        "health": {"postgresql": {"databases": [pg_db]}, "mongodb": {}},
    }))
    config.chmod(0o600)
    code, line = _run(config)
    assert code == 0 and line["ok"] is True, line
    assert set(line["engines"]) == {"postgresql", "mongodb"}
    pg = _samples(textfiles / "dbops_health_postgresql.prom")
    labels = (("engine", "postgresql"),)
    assert pg[("dbops_health_up", labels)] == 1
    assert pg[("dbops_health_score", labels)] == line["engines"]["postgresql"]["score"]
    assert pg[("dbops_health_connections_used", labels)] >= 1
    assert 0 < pg[("dbops_health_connections_used_ratio", labels)] < 1
    mongo = _samples(textfiles / "dbops_health_mongodb.prom")
    assert mongo[("dbops_health_up", (("engine", "mongodb"),))] == 1
    assert pg_server.password not in (textfiles / "dbops_health_postgresql.prom").read_text()

    # A server that cannot be reached: exit 1, dbops_health_up 0, the other engine still written.
    broken = json.loads(config.read_text())
    broken["postgres"]["login_port"] = 1  # nothing listens on port 1 of 127.0.0.1
    broken["postgres"]["login_host"] = "127.0.0.1"
    config.write_text(json.dumps(broken))
    code, line = _run(config)
    assert code == 1 and line["engines"]["postgresql"]["ok"] is False, line
    assert line["engines"]["mongodb"]["ok"] is True
    assert _samples(textfiles / "dbops_health_postgresql.prom")[("dbops_health_up", labels)] == 0


def test_health_run_rejects_a_wrong_config(tmp_path):
    config = tmp_path / "health.json"
    config.write_text(json.dumps({"health": {"oracle": {}}}))
    code, line = _run(config)
    assert code == 2 and "health must map postgresql" in line["error"]
