"""health.yml's per-cluster view against a primary and its standby (two local hosts): the
pg_clusters filter over what each node's pg_health_info said, and its findings in health_fail_on."""

from __future__ import annotations

import json
import sys

from tests.harness.runner import REPO_ROOT
from tests.integration.replication.test_pg_replication import wait_replayed

HEALTH = REPO_ROOT / "playbooks" / "health.yml"


def run_health(ansible, hosts: dict, extra: dict):
    inventory = ansible.workdir / "health_pair.ini"
    lines = ["[postgresql]"]
    for name, server in hosts.items():
        login = {k: v for k, v in server.params().items()}
        lines.append(f"{name} ansible_connection=local ansible_python_interpreter={sys.executable}"
                     f" health_postgresql='{json.dumps(login)}'")
    lines.append("[local]\nlocalhost ansible_connection=local ansible_python_interpreter=" + sys.executable)
    inventory.write_text("\n".join(lines) + "\n")
    report = ansible.workdir / "health.html"
    return ansible.playbook(HEALTH, inventory=inventory,
                            extra_vars={"health_hosts": "postgresql", "health_report_path": str(report),
                                        "health_fail_on": "never", **extra})


def cluster_lines(run) -> list[str]:
    for result in run.task_results("localhost"):
        if result["_task"].startswith("Show each PostgreSQL cluster"):
            return result["msg"]
    raise AssertionError(run.stdout[-3000:])


def test_health_shows_the_cluster_and_fails_on_its_findings_at_warning(ansible, pg_pair):
    primary, standby = pg_pair
    primary.query("CREATE TABLE IF NOT EXISTS health_t (n int); INSERT INTO health_t VALUES (1)")
    wait_replayed(primary, standby)
    run = run_health(ansible, {"standby_a": standby, "primary": primary}, {})
    assert run.rc == 0, run.stdout[-3000:]
    lines = cluster_lines(run)
    assert lines[0] == "PostgreSQL cluster of primary (primary): 1 standby(s) connected"
    standby_line = lines[1]
    assert standby_line.startswith("  standby standby_a (127.0.0.1/32): streaming, lag ")
    lag_bytes = int(standby_line.split("lag ")[1].split(" bytes")[0])
    assert 0 <= lag_bytes < 16 * 1024 * 1024
    assert any(line.startswith("  slot standby_a: active, retains ") for line in lines)
    assert not [line for line in lines if "FINDING" in line], lines

    # A slot nobody uses that retains WAL: two findings, and health_fail_on=warning fails the run.
    primary.query("SELECT pg_create_physical_replication_slot('health_stale', true)")
    try:
        primary.query("INSERT INTO health_t SELECT generate_series(1, 20000)")
        run = run_health(ansible, {"primary": primary, "standby_a": standby},
                         {"health_max_slot_retained_bytes": 1000, "health_fail_on": "warning"})
        lines = cluster_lines(run)
        assert "  FINDING: slot health_stale retains more than 1000 bytes of WAL" in lines, lines
        assert "  FINDING: slot health_stale is inactive (no standby streams from it)" in lines, lines
        assert run.rc != 0
        failed = [r for r in run.task_results("localhost") if r.get("failed")]
        assert len(failed) == 1 and "cluster: slot health_stale is inactive" in failed[0]["msg"], failed
    finally:
        primary.query("SELECT pg_drop_replication_slot('health_stale')")
