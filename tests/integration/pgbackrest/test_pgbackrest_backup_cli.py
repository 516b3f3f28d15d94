"""``dbops-backup pgbackrest-backup`` (the pgbackrest role's cron job) against a real cluster and a real
pgBackRest repository: metrics equal to what ``pgbackrest info`` says, pgBackRest's exit code, the
last success kept through failures, the lock, and a metrics file that is never half-written."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _metrics
from tests.harness import pgbackrest as pgbr_harness
from tests.harness.proc import stop_pid

LAUNCHER = Path(__file__).resolve().parents[3] / "roles" / "db_backup" / "files" / "dbops-backup"
COLLECTIONS = Path(__file__).resolve().parents[3] / ".build" / "collections"
P = "dbops_pgbackrest_"


@pytest.fixture
def stanza() -> Iterator[pgbr_harness.PgbrStanza]:
    if os.environ.get("DBOPS_TEST_PG_DSN"):
        pytest.skip("the pgBackRest stanza is always local (DBOPS_TEST_PG_DSN is set)")
    stanza = pgbr_harness.start_stanza()
    try:
        stanza.server.query("CREATE TABLE filler AS SELECT g AS id, md5(g::text) AS v "
                            "FROM generate_series(1, 20000) g")
        (stanza.base / "metrics").mkdir(mode=0o755)
        pgbr_harness.chown_to_cluster_user(stanza.base / "metrics")
        yield stanza
    finally:
        pgbr_harness.stop_stanza(stanza)


def wrapper(stanza: pgbr_harness.PgbrStanza, kind: str,
            name: str | None = None) -> subprocess.CompletedProcess[str]:
    """The cron job's command, as the repository user (here the cluster's user) with the system python."""
    argv = ["/usr/bin/python3", str(LAUNCHER), "pgbackrest-backup", f"--stanza={name or stanza.stanza}",
            f"--type={kind}", f"--config={stanza.config}", f"--textfile-dir={stanza.base / 'metrics'}",
            f"--lock-file={stanza.base / 'backup.lock'}"]
    env = {**stanza.env(), "DBOPS_COLLECTIONS_PATH": str(COLLECTIONS)}
    kwargs: dict[str, Any] = {"user": stanza.user} if stanza.user else {}
    return subprocess.run(argv, check=False, capture_output=True, text=True, env=env, cwd=stanza.base,
                          timeout=600, **kwargs)


def metrics(stanza: pgbr_harness.PgbrStanza, name: str = "main") -> dict[tuple[str, Any], float]:
    path = stanza.base / "metrics" / f"dbops_pgbackrest_{name}.prom"
    families = {line.split()[2] for line in path.read_text().splitlines() if line.startswith("# TYPE")}
    return _metrics.read_samples(str(path), families)


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((P + name, tuple(sorted(labels.items()))))


def info(stanza: pgbr_harness.PgbrStanza) -> dict[str, Any]:
    return json.loads(stanza.run("info", "--output=json").stdout)[0]


def newest(raw: dict[str, Any], kind: str) -> dict[str, Any]:
    return [b for b in raw["backup"] if b["type"] == kind][-1]


def test_successful_runs_write_what_pgbackrest_info_says(stanza):
    started = time.time()
    full = wrapper(stanza, "full")
    assert full.returncode == 0, full.stderr
    assert full.stdout == "" and full.stderr == ""  # cron mails nothing on success, as before
    stanza.server.query("UPDATE filler SET v = md5(v) WHERE id % 50 = 0")

    reads: list[str] = []
    done = threading.Event()
    path = stanza.base / "metrics" / "dbops_pgbackrest_main.prom"

    def read_while_running() -> None:
        while not done.is_set():
            reads.append(path.read_text())

    reader = threading.Thread(target=read_while_running)
    reader.start()
    try:
        incr = wrapper(stanza, "incr")
    finally:
        done.set()
        reader.join()
    assert incr.returncode == 0, incr.stderr

    raw = info(stanza)
    samples = metrics(stanza)
    for kind in ("full", "incr"):
        backup = newest(raw, kind)
        labels = {"stanza": "main", "type": kind}
        assert value(samples, "backup_last_run_success", **labels) == 1
        assert value(samples, "backup_last_run_exit_code", **labels) == 0
        assert started <= value(samples, "backup_last_run_timestamp_seconds", **labels) <= time.time()
        stop = backup["timestamp"]["stop"]
        assert value(samples, "backup_last_success_timestamp_seconds", **labels) == stop
        assert value(samples, "backup_duration_seconds", **labels) == stop - backup["timestamp"]["start"]
        assert value(samples, "backup_size_bytes", **labels) == backup["info"]["size"]
        assert value(samples, "backup_delta_bytes", **labels) == backup["info"]["delta"]
        assert value(samples, "backup_repo_delta_bytes", **labels) == backup["info"]["repository"]["delta"]
        assert value(samples, "backups", **labels) == 1
    assert value(samples, "backups", stanza="main", type="diff") == 0
    newest_stop = newest(raw, "incr")["timestamp"]["stop"]
    assert value(samples, "newest_backup_timestamp_seconds", stanza="main") == newest_stop
    assert value(samples, "stanza_status", stanza="main") == 0
    assert value(samples, "info_success", stanza="main") == 1
    # the incremental copied less than the full
    assert (value(samples, "backup_delta_bytes", stanza="main", type="incr")
            < value(samples, "backup_delta_bytes", stanza="main", type="full"))
    # every read during the run saw a whole file (written to a temporary file, then renamed)
    assert reads
    for text in reads:
        assert text.endswith("\n") and f"# TYPE {P}info_success gauge" in text, text[-200:]
    assert sorted(os.listdir(stanza.base / "metrics")) == ["dbops_pgbackrest_main.prom"]


def test_failed_runs_exit_with_pgbackrests_code_and_keep_the_last_success(stanza):
    assert wrapper(stanza, "full").returncode == 0
    before = metrics(stanza)
    last_full = value(before, "backup_last_success_timestamp_seconds", stanza="main", type="full")
    assert last_full

    # a stanza the repository does not know: pgBackRest's own exit code, a failure in its file
    direct = subprocess.run(["pgbackrest", f"--config={stanza.config}", "--stanza=nope", "--type=full",
                             "backup"], check=False, capture_output=True, text=True, env=stanza.env(),
                            cwd=stanza.base, **({"user": stanza.user} if stanza.user else {}))
    bad = wrapper(stanza, "full", name="nope")
    assert direct.returncode != 0
    assert bad.returncode == direct.returncode, (bad.stderr, direct.stderr)
    assert "backup failed" in bad.stderr
    nope = metrics(stanza, "nope")
    assert value(nope, "backup_last_run_success", stanza="nope", type="full") == 0
    assert value(nope, "backup_last_run_exit_code", stanza="nope", type="full") == direct.returncode
    assert value(nope, "backup_last_success_timestamp_seconds", stanza="nope", type="full") is None

    # the cluster stops: the incremental fails, the full's last success stays
    stop_pid(stanza.server.pid)
    direct_incr = stanza.run("backup", "--type=incr", check=False)
    failed = wrapper(stanza, "incr")
    assert failed.returncode == direct_incr.returncode != 0, failed.stderr
    after = metrics(stanza)
    assert value(after, "backup_last_run_success", stanza="main", type="incr") == 0
    assert value(after, "backup_last_run_exit_code", stanza="main", type="incr") == failed.returncode
    assert value(after, "backup_last_run_success", stanza="main", type="full") == 1  # the other type's run
    assert value(after, "backup_last_success_timestamp_seconds", stanza="main", type="full") == last_full
    assert value(after, "newest_backup_timestamp_seconds", stanza="main") == last_full
    assert value(after, "backup_last_success_timestamp_seconds", stanza="main", type="incr") is None
    files = ["dbops_pgbackrest_main.prom", "dbops_pgbackrest_nope.prom"]
    assert sorted(os.listdir(stanza.base / "metrics")) == files


def test_an_overlapping_run_does_not_start_a_second_backup(stanza):
    lock = stanza.base / "backup.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    os.chmod(lock, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = wrapper(stanza, "full")
    finally:
        os.close(fd)
    assert result.returncode == 50, result.stderr
    assert "another scheduled backup" in result.stderr
    assert info(stanza)["backup"] == []
    assert not (stanza.base / "metrics" / "dbops_pgbackrest_main.prom").exists()
