"""failover.yml, rejoin.yml and switchover.yml refuse bad input before they change anything
(a primary and its streaming standby, two local hosts)."""

from __future__ import annotations

import sys

import pytest

from tests.harness.runner import REPO_ROOT

PLAYBOOKS = REPO_ROOT / "playbooks"


def run(ansible, pg_pair, playbook: str, extra_vars: dict):
    primary, standby = pg_pair
    inventory = ansible.workdir / "guards.ini"
    # The standby first: the playbooks must ask each node, not trust the order. No become: the
    # harness servers run as the test user; the postgres login's password (the standby is a base
    # backup of the primary, so the same) comes from PGPASSWORD.
    inventory.write_text("[postgresql]\n" + "".join(
        f"{name} ansible_connection=local ansible_python_interpreter={sys.executable} ansible_become=false"
        f" dbops_pg_socket_dir={server.socket_dir} postgresql_port={server.port}\n"
        for name, server in (("standby", standby), ("primary", primary))))
    return ansible.playbook(PLAYBOOKS / playbook, inventory=inventory, extra_vars=extra_vars,
                            env={"PGPASSWORD": primary.password})


def roles(pg_pair) -> list[bool]:
    return [server.query("SELECT pg_is_in_recovery()")[0][0] for server in pg_pair]


@pytest.mark.parametrize(("extra_vars", "message"), [
    ({"dbops_failover_target": "standby"}, "set dbops_failover_confirm to the target name (standby)"),
    ({"dbops_failover_target": "standby", "dbops_failover_confirm": "primary"},
     "set dbops_failover_confirm to the target name (standby)"),
    ({"dbops_failover_target": "standbi", "dbops_failover_confirm": "standbi"},
     "the target 'standbi' is not a running member"),
    ({"dbops_failover_target": "standby", "dbops_failover_confirm": "standby"},
     "a primary is running (primary): use dbops.datastores.switchover"),
])
def test_failover_refuses_and_changes_nothing(ansible, pg_pair, extra_vars, message):
    result = run(ansible, pg_pair, "failover.yml", extra_vars)
    assert result.rc != 0
    assert message in result.stdout, result.stdout
    assert "Nothing was changed" in result.stdout
    assert all(stats["changed"] == 0 for stats in result.stats.values()), result.stats
    assert roles(pg_pair) == [False, True]


def test_rejoin_refuses_an_unknown_host(ansible, pg_pair):
    result = run(ansible, pg_pair, "rejoin.yml", {"dbops_rejoin_host": "pg-nope"})
    assert result.rc != 0
    assert "the host 'pg-nope' must be a host of this play" in result.stdout, result.stdout
    assert all(stats["changed"] == 0 for stats in result.stats.values()), result.stats
    assert roles(pg_pair) == [False, True]


def test_switchover_refuses_a_wrong_target_name(ansible, pg_pair):
    result = run(ansible, pg_pair, "switchover.yml", {"dbops_switchover_target": "standbi"})
    assert result.rc != 0
    assert "the target 'standbi' must be a host of this play" in result.stdout, result.stdout
    assert all(stats["changed"] == 0 for stats in result.stats.values()), result.stats
    assert roles(pg_pair) == [False, True]
