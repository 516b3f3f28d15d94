"""dbops-backup against a real server: the Prometheus text files and the failure webhook."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import backups as bk


class _Receiver:
    """A local HTTP server that records every POST body (127.0.0.1 only)."""

    def __init__(self):
        self.bodies = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = _Receiver()
    yield server
    server.close()


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is: nobody listens there


def _run(*args):
    proc = subprocess.run(bk.cli_command(*args), env=bk.cli_env(), capture_output=True, text=True,
                          timeout=300, check=False)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout + proc.stderr
    return proc.returncode, json.loads(lines[0])


def _samples(path):
    text = path.read_text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _config(tmp_path, pg_server, database, textfile_dir, webhook_url):
    root = tmp_path / "backups"
    root.mkdir(exist_ok=True)
    config = tmp_path / f"backup-{database}.json"
    config.write_text(json.dumps({
        "root": str(root),
        "postgres": pg_server.params(),
        "backups": [{"engine": "postgresql", "database": database}],
        "metrics": {"textfile_dir": str(textfile_dir)},
        "notify": {"webhook_url": webhook_url, "format": "json", "timeout": 5},
    }))
    config.chmod(0o600)
    return config


def test_good_and_missing_database_jobs_leave_metrics_and_one_webhook(pg_server, pg_db, tmp_path, receiver):
    bk.create_pg_seed(pg_server, pg_db, rows=20)
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    good = _config(tmp_path, pg_server, pg_db, textfiles, receiver.url)
    code, line = _run("backup", "--config", str(good))
    assert code == 0 and line["ok"] is True, line
    assert receiver.bodies == []  # success: no notification
    jobs = _samples(textfiles / "dbops_backup_jobs.prom")
    labels = (("database", pg_db), ("engine", "postgresql"))
    assert jobs[("dbops_backup_success", labels)] == 1
    assert jobs[("dbops_backup_size_bytes", labels)] == line["backups"][0]["size"] > 0
    success_at = jobs[("dbops_backup_last_success_timestamp_seconds", labels)]
    assert ("dbops_backup_last_failure_timestamp_seconds", labels) not in jobs

    missing = "dbops_no_such_db"
    bad = _config(tmp_path, pg_server, missing, textfiles, receiver.url)
    code, line = _run("backup", "--config", str(bad))
    assert code == 1 and line["ok"] is False and "notify_error" not in line, line
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert body["ok"] is False and body["exit_code"] == 1
    assert [(f["step"], f["database"]) for f in body["failures"]] == [("backup", missing)]
    assert pg_server.password not in json.dumps(body)
    jobs = _samples(textfiles / "dbops_backup_jobs.prom")
    bad_labels = (("database", missing), ("engine", "postgresql"))
    assert jobs[("dbops_backup_success", bad_labels)] == 0
    assert jobs[("dbops_backup_last_failure_timestamp_seconds", bad_labels)] > 0
    assert ("dbops_backup_last_success_timestamp_seconds", bad_labels) not in jobs
    assert jobs[("dbops_backup_last_success_timestamp_seconds", labels)] == success_at  # the other job kept
    run = _samples(textfiles / "dbops_backup_run.prom")
    assert run[("dbops_backup_run_success", (("command", "backup"),))] == 0
    assert run[("dbops_backup_run_exit_code", (("command", "backup"),))] == 1
    assert sorted(os.listdir(textfiles)) == ["dbops_backup_jobs.prom", "dbops_backup_run.prom"]
    if os.path.exists("/usr/bin/promtool"):
        for name in os.listdir(textfiles):
            check = subprocess.run(["promtool", "check", "metrics"], input=(textfiles / name).read_text(),
                                   capture_output=True, text=True, check=False)
            assert check.returncode == 0, check.stdout + check.stderr


def test_unwritable_textfile_dir_and_unreachable_webhook_keep_the_result(pg_server, pg_db, tmp_path):
    bk.create_pg_seed(pg_server, pg_db, rows=5)
    textfiles = tmp_path / "not-writable"
    textfiles.mkdir()
    textfiles.chmod(0o500)
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    if os.geteuid() == 0:  # root writes anywhere: a path below a regular file cannot be created by anyone
        (tmp_path / "file").write_text("")
        textfiles = tmp_path / "file" / "dir"
    good = _config(tmp_path, pg_server, pg_db, textfiles, url)
    code, line = _run("backup", "--config", str(good))
    assert code == 0 and line["ok"] is True, line  # the backup worked: metrics do not change that
    assert line["backups"][0]["ok"] is True and line["metrics_error"].startswith("write metrics")

    bad = _config(tmp_path, pg_server, "dbops_no_such_db", textfiles, url)
    code, line = _run("backup", "--config", str(bad))
    assert code == 1 and line["ok"] is False, line  # the backup failed: a failed webhook does not hide it
    assert line["backups"][0]["ok"] is False
    assert line["notify_error"].startswith("post notification webhook:")
    assert line["metrics_error"].startswith("write metrics")
