"""pg_pitr_drill against a real stanza: markers before/after the target, RTO, cleanup in every case."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.harness import pg as pg_harness
from tests.harness import pgbackrest as pgbr_harness
from tests.harness.runner import COLLECTIONS_PATH

BEFORE = {"name": "before present", "sql": "SELECT count(*) = 1 FROM pitr_markers WHERE name = 'before'"}
AFTER = {"name": "after absent", "sql": "SELECT count(*) = 0 FROM pitr_markers WHERE name = 'after'"}


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


@pytest.fixture
def scratch(pitr_stanza) -> Path:
    return pitr_stanza.stanza.base / "scratch" / uuid.uuid4().hex[:8]


def _drill(ansible, pitr_stanza, scratch, check=False, **args):
    stanza = pitr_stanza.stanza
    params = {"config": str(stanza.config), "stanza": "main", "data_directory": str(scratch),
              "port": pg_harness.free_port(), "target_time": _iso(pitr_stanza.target),
              "bin_dir": str(stanza.bindir), **args}
    return pgbr_harness.run_module_as(ansible, stanza, "pg_pitr_drill", params, check=check)


def _gone(scratch: Path) -> bool:
    return not any(Path(f"{scratch}{suffix}").exists() for suffix in ("", ".run", ".tablespaces"))


def test_drill_finds_the_marker_before_and_not_the_one_after(ansible, pitr_stanza, scratch):
    planned = _drill(ansible, pitr_stanza, scratch, check=True, checks=[BEFORE, AFTER])
    assert not planned.get("failed"), planned.get("msg")
    assert planned["plan"]["mode"] == "scratch" and planned["checks"] == []
    assert not scratch.exists()

    result = _drill(ansible, pitr_stanza, scratch, checks=[BEFORE, AFTER])
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False
    assert [(c["name"], c["passed"], c["value"]) for c in result["checks"]] == [
        ("before present", True, "t"), ("after absent", True, "t")]
    assert 0 < result["restore_seconds"] < result["rto_seconds"]
    restored_to = dt.datetime.fromisoformat(result["restored_to"].replace("Z", "+00:00"))
    assert pitr_stanza.before_commit - dt.timedelta(seconds=1) <= restored_to <= pitr_stanza.target
    assert result["cleaned_up"] is True and _gone(scratch)
    # The live cluster still has both markers and kept archiving nothing from the copy.
    live = pitr_stanza.stanza.server
    assert live.query("SELECT count(*) FROM pitr_markers")[0][0] == 2


def test_a_failing_check_fails_the_drill_and_still_cleans_up(ansible, pitr_stanza, scratch):
    wrong = {"name": "after present",
             "sql": "SELECT count(*) = 1 FROM pitr_markers WHERE name = 'after'"}
    broken = {"name": "bad sql", "sql": "SELECT nonsense FROM nowhere"}
    result = _drill(ansible, pitr_stanza, scratch, checks=[BEFORE, wrong, broken])
    assert result.get("failed") is True
    assert result["msg"].endswith(": after present, bad sql failed")
    by_name = {c["name"]: c for c in result["checks"]}
    assert by_name["before present"]["passed"] is True
    assert by_name["after present"] == {
        "name": "after present", "database": "postgres", "passed": False, "value": "f",
        "error": "the query must return one row with one true value"}
    assert 'relation "nowhere" does not exist' in by_name["bad sql"]["error"]
    assert result["cleaned_up"] is True and _gone(scratch)


def test_a_target_before_the_backups_is_refused_before_anything_is_written(ansible, pitr_stanza, scratch):
    result = _drill(ansible, pitr_stanza, scratch, target_time="2000-01-01T00:00:00Z", checks=[BEFORE])
    assert result.get("failed") is True
    assert result["msg"].startswith("plan restore to 2000-01-01T00:00:00Z: before the oldest backup's end")
    assert _gone(scratch)


def test_sigterm_during_the_drill_stops_and_removes_the_copy(pitr_stanza, scratch):
    """The drill run directly (as the cluster's user) and killed while a check runs."""
    stanza = pitr_stanza.stanza
    params = {"config": str(stanza.config), "stanza": "main", "pgbackrest_bin": "pgbackrest",
              "data_directory": str(scratch), "port": pg_harness.free_port(),
              "target_time": _iso(pitr_stanza.target), "bin_dir": str(stanza.bindir),
              "login_user": "postgres", "start_timeout": 120,
              "checks": [{"name": "slow", "database": "postgres",
                          "sql": "SELECT true FROM pg_sleep(60)"}]}
    script = ("import json, sys\n"
              "from ansible_collections.dbops.datastores.plugins.module_utils import (\n"
              "    _errors, _pg_pitr_drill)\n"
              "try:\n"
              "    _pg_pitr_drill.drill(json.loads(sys.argv[1]))\n"
              "except _errors.DbopsError as exc:\n"
              "    print(exc.msg); print(json.dumps(exc.details.get('cleaned_up')))\n")
    kwargs = {"user": stanza.user} if stanza.user else {}
    python = "/usr/bin/python3" if stanza.user else sys.executable
    proc = subprocess.Popen([python, "-c", script, json.dumps(params)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=stanza.base,
                            env={**stanza.env(), "PYTHONPATH": str(COLLECTIONS_PATH)}, **kwargs)
    try:
        deadline = time.monotonic() + 120
        # Running: the copy answers (its socket exists) and the slow check has started.
        while not list(Path(f"{scratch}.run").glob(".s.PGSQL.*")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the copy never started"
            time.sleep(0.2)
        time.sleep(3)  # the slow check is running
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.splitlines() == ["run PITR drill: interrupted (signal 15); the copy was stopped and removed",
                                "true"]
    assert _gone(scratch)
