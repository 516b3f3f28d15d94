"""playbooks/tasks/wait_standbys_replayed.yml against a primary and its standby (two local hosts)."""

from __future__ import annotations

import json
import sys

from tests.harness.runner import REPO_ROOT

TASKS = REPO_ROOT / "playbooks" / "tasks" / "wait_standbys_replayed.yml"


def run(ansible, pg_pair, timeout: int, order=("standby", "primary")):
    primary, standby = pg_pair
    servers = {"primary": primary, "standby": standby}
    inventory = ansible.workdir / "pair.ini"
    # Inventory order puts the standby first: the tasks must ask each node, not trust the order.
    inventory.write_text("".join(
        f"{name} ansible_connection=local ansible_python_interpreter={sys.executable}"
        f" dbops_replay_login='{json.dumps(servers[name].params())}'\n" for name in order))
    play = [{"hosts": "all", "gather_facts": False, "vars": {"dbops_replay_timeout": timeout},
             "tasks": [{"name": "wait", "ansible.builtin.include_tasks": str(TASKS)}]}]
    path = ansible.workdir / "wait_replayed.yml"
    path.write_text(json.dumps(play))
    return ansible.playbook(path, inventory=inventory)


def test_returns_once_the_standby_replayed_and_changes_nothing(ansible, pg_pair):
    primary, _standby = pg_pair
    primary.query("CREATE TABLE IF NOT EXISTS replay_t (n int); INSERT INTO replay_t VALUES (1)")
    result = run(ansible, pg_pair, timeout=30)
    assert result.rc == 0, result.stdout + result.stderr
    assert result.stats["standby"]["changed"] == 0
    assert result.stats["primary"]["changed"] == 0
    messages = [r.get("msg") for r in result.task_results("standby")]
    assert "standby replayed primary's position" in messages, messages
    # The primary does not wait for itself.
    primary_tasks = result.task_results("primary")
    asked = [r for r in primary_tasks if "Ask this node" in r["_task"]]
    assert len(asked) == 1 and asked[0]["query_result"][0]["in_recovery"] is False
    waited = [r for r in primary_tasks if "Poll" in r["_task"] or "Fail with" in r["_task"]]
    assert waited and all(r.get("skipped") for r in waited), primary_tasks


def test_fails_naming_the_lagging_standby_and_its_lag(ansible, pg_pair):
    primary, standby = pg_pair
    standby.query("SELECT pg_wal_replay_pause()")
    try:
        primary.query("CREATE TABLE IF NOT EXISTS replay_t (n int);"
                      " INSERT INTO replay_t SELECT generate_series(1, 5000)")
        result = run(ansible, pg_pair, timeout=2)
        assert result.rc != 0
        out = result.stdout
        assert "standby has not replayed primary's WAL position" in out, out
        assert "bytes behind" in out
        behind = int(out.split(" bytes behind")[0].rsplit(" ", 1)[1].strip('"'))
        assert behind > 0
        assert result.stats["primary"]["failures"] == 0
    finally:
        standby.query("SELECT pg_wal_replay_resume()")
