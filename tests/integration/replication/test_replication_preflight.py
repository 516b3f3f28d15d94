"""The postgresql role's replication preflight refuses bad topology input before it changes anything
(two local hosts; only the preflight tasks run, so nothing is installed whatever happens)."""

from __future__ import annotations

import json
import sys

import pytest


def run_preflight(ansible, tmp_path, group_vars: dict, hosts: tuple[str, ...] = ("pg-a", "pg-b")):
    # Group variables in the inventory, as in inventories/<env>/group_vars (hostvars see them).
    inventory = tmp_path / "cluster.yml"
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(json.dumps({"postgresql": {
        "hosts": dict.fromkeys(hosts, host),
        "vars": {"postgresql_listen_addresses": ["*"], **group_vars}}}))
    data_dir = tmp_path / "data"  # no cluster here: nothing to read, nothing to lose
    play = [{
        "hosts": "postgresql", "gather_facts": True,
        "vars": {"__postgresql_distribution_major": "15"},
        "tasks": [
            {"name": "preflight", "ansible.builtin.include_role": {
                "name": "dbops.datastores.postgresql", "tasks_from": "preflight.yml"},
             "vars": {"__postgresql_data_dir": str(data_dir)}},
            {"name": "reached", "ansible.builtin.debug": {"msg": "preflight passed"}},
        ],
    }]
    path = tmp_path / "preflight.yml"
    path.write_text(json.dumps(play))
    return ansible.playbook(path, inventory=inventory)


@pytest.mark.parametrize(("group_vars", "message"), [
    ({"postgresql_replication_primary": "pg-x", "postgresql_replication_password": "s3cret"},
     "names 'pg-x' as its primary, which is not in the inventory"),
    ({"postgresql_replication_primary": "pg-a"},
     "replication needs postgresql_replication_password"),
    ({"postgresql_replication_primary": "pg-a", "postgresql_replication_password": ""},
     "replication needs postgresql_replication_password"),
])
def test_preflight_refuses(ansible, tmp_path, group_vars, message):
    result = run_preflight(ansible, tmp_path, group_vars)
    assert result.rc != 0
    assert message in result.stdout, result.stdout
    assert "preflight passed" not in result.stdout
    assert all(stats["changed"] == 0 for stats in result.stats.values()), result.stats


LONG = "pg-" + "a" * 61  # 64 characters: one more than a replication slot name may have


@pytest.mark.parametrize(("hosts", "message"), [
    (("pg-1", "pg_1"), "two members of the cluster would share a replication slot"),
    (("pg-1", LONG), f"{LONG}: its replication slot name pg_{'a' * 61} is 64 bytes long;"
                     " PostgreSQL allows at most 63"),
])
def test_preflight_refuses_inventory_names_that_cannot_name_a_slot(ansible, tmp_path, hosts, message):
    result = run_preflight(ansible, tmp_path, {"postgresql_replication_primary": "pg-1",
                                               "postgresql_replication_password": "s3cret"}, hosts)
    assert result.rc != 0
    assert message in result.stdout, result.stdout
    assert "preflight passed" not in result.stdout


def test_preflight_passes_a_good_topology(ansible, tmp_path):
    """The same play with a primary in the play and a password gets past the checks."""
    result = run_preflight(ansible, tmp_path, {"postgresql_replication_primary": "pg-a",
                                               "postgresql_replication_password": "s3cret"})
    assert result.rc == 0, result.stdout
    assert "preflight passed" in result.stdout
