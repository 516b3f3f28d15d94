"""status.yml's per-cluster view against a primary and its standby (two local hosts)."""

from __future__ import annotations

import json
import sys

from tests.harness.runner import REPO_ROOT

STATUS = REPO_ROOT / "playbooks" / "status.yml"


def run_status(ansible, hosts: dict, extra: dict | None = None):
    inventory = ansible.workdir / "status.ini"
    lines = ["[postgresql]"]
    for name, server in hosts.items():
        login = dict(server.params())
        lines.append(f"{name} ansible_connection=local ansible_python_interpreter={sys.executable}"
                     f" health_postgresql='{json.dumps(login)}'")
    inventory.write_text("\n".join(lines) + "\n")
    extra_vars = {"dbops_status_hosts": "postgresql", **(extra or {})}
    return ansible.playbook(STATUS, inventory=inventory, extra_vars=extra_vars)


def cluster_lines(run) -> list[str]:
    for host in ("standby_a", "primary"):
        for result in run.task_results(host):
            if result["_task"].startswith("Show each PostgreSQL cluster"):
                return result["msg"]
    raise AssertionError(run.stdout)


def test_the_cluster_view_names_the_primary_the_streaming_standby_and_its_slot(ansible, pg_pair):
    primary, standby = pg_pair
    # Inventory order lists the standby first; the view comes from what each node reports.
    run = run_status(ansible, {"standby_a": standby, "primary": primary})
    assert run.rc == 0, run.stdout + run.stderr
    lines = cluster_lines(run)
    assert lines[0] == "PostgreSQL cluster of primary (primary): 1 standby(s) connected"
    assert lines[1].startswith("  standby standby_a (127.0.0.1/32): streaming, lag ")
    assert any(line.startswith("  slot standby_a: active, retains ") for line in lines)
    assert not [line for line in lines if "FINDING" in line], lines


def test_a_standby_nobody_streams_to_and_a_slot_retaining_wal_are_findings(ansible, pg_pair):
    primary, standby = pg_pair
    primary.query("SELECT pg_create_physical_replication_slot('stale_slot', true)")
    try:
        primary.query("CREATE TABLE IF NOT EXISTS status_t (n int);"
                      " INSERT INTO status_t SELECT generate_series(1, 20000)")
        # The standby alone in the play: no primary shows it connected.
        alone = cluster_lines(run_status(ansible, {"standby_a": standby}))
        assert alone[0].startswith(
            "FINDING: standby_a is a standby that no primary of this play shows as connected")
        lines = cluster_lines(run_status(ansible, {"primary": primary, "standby_a": standby},
                                         {"dbops_status_max_slot_retained_bytes": 1000}))
        assert "  FINDING: slot stale_slot retains more than 1000 bytes of WAL" in lines, lines
    finally:
        primary.query("SELECT pg_drop_replication_slot('stale_slot')")
