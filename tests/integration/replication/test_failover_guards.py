"""failover.yml, rejoin.yml and switchover.yml refuse bad input before they change anything
(a primary and its streaming standby, two local hosts)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.harness import pg as pg_harness
from tests.harness import replication
from tests.harness.proc import free_port, stop_pid
from tests.harness.runner import REPO_ROOT

PLAYBOOKS = REPO_ROOT / "playbooks"


def run(ansible, pg_pair, playbook: str, extra_vars: dict, check: bool = False):
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
                            env={"PGPASSWORD": primary.password}, check=check)


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


@pytest.fixture
def fresh_pair():
    """A primary and its streaming standby of their own (these tests could promote the standby)."""
    primary = pg_harness.start_cluster()
    standby = None
    try:
        primary.query("SELECT pg_create_physical_replication_slot('standby_f')")
        standby = replication.start_standby(primary, slot="standby_f")
        deadline = time.monotonic() + 60
        receiver = "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')"
        while standby.query(receiver)[0][0] != "streaming":
            assert time.monotonic() < deadline, "the standby never streamed"
            time.sleep(0.1)
        yield primary, standby
    finally:
        if standby is not None:
            pg_harness.stop_cluster(standby)
        pg_harness.stop_cluster(primary)


def failover_unreachable_primary(ansible, primary, standby, *, check: bool = False):
    """failover.yml with the primary unreachable from the controller (an SSH port nothing listens
    on), as after a crash or a network partition; the standby as the target."""
    inventory = ansible.workdir / "partition.ini"
    inventory.write_text(
        "[postgresql]\n"
        f"standby ansible_connection=local ansible_python_interpreter={sys.executable} ansible_become=false"
        f" dbops_pg_socket_dir={standby.socket_dir} postgresql_port={standby.port}\n"
        f"primary ansible_connection=ssh ansible_host=127.0.0.1 ansible_port={free_port()}"
        " ansible_ssh_common_args='-o ConnectTimeout=2 -o StrictHostKeyChecking=no'\n")
    extra_vars = {"dbops_failover_target": "standby", "dbops_failover_confirm": "standby",
                  # the role's socket for promote.yml's queries (role variables yield to extra vars)
                  "__postgresql_socket_dir": str(standby.socket_dir),
                  # a tripwire: should a run get as far as the postgresql role, its argument
                  # validation stops it before it touches this machine
                  "postgresql_install_source": "not-in-tests"}
    return ansible.playbook(PLAYBOOKS / "failover.yml", inventory=inventory, extra_vars=extra_vars,
                            env={"PGPASSWORD": primary.password}, check=check)


def test_failover_refuses_while_the_target_streams_from_a_live_primary(ansible, fresh_pair):
    primary, standby = fresh_pair
    result = failover_unreachable_primary(ansible, primary, standby)
    # one primary still, the standby not promoted
    assert [s.query("SELECT pg_is_in_recovery()")[0][0] for s in fresh_pair] == [False, True]
    assert result.rc != 0
    assert (f"failover: standby still streams WAL from {primary.host}:{primary.port}, so the primary is"
            " alive") in result.stdout, result.stdout
    assert "Nothing was changed" in result.stdout


def test_failover_in_check_mode_says_what_it_would_do_and_promotes_nothing(ansible, fresh_pair):
    primary, standby = fresh_pair
    stop_pid(primary.pid, signal.SIGINT)  # the primary is gone
    result = failover_unreachable_primary(ansible, primary, standby, check=True)
    assert standby.query("SELECT pg_is_in_recovery()")[0][0] is True  # not promoted
    assert result.rc == 0, result.stdout
    assert ("failover (check mode): would promote standby once it replayed what it received and"
            " re-point no other member") in result.stdout, result.stdout


def test_switchover_in_check_mode_says_what_it_would_do_and_changes_nothing(ansible, pg_pair):
    result = run(ansible, pg_pair, "switchover.yml", {"dbops_switchover_target": "standby"}, check=True)
    assert roles(pg_pair) == [False, True]
    assert result.rc == 0, result.stdout
    assert ("switchover (check mode): would wait until standby stream from primary, stop primary cleanly,"
            " promote standby once it replayed the shutdown checkpoint") in result.stdout, result.stdout
    assert all(stats["changed"] == 0 for stats in result.stats.values()), result.stats


def promote(ansible, standby, primary_password, after_lsn: str | None = None):
    """The postgresql role's promote.yml on the standby (as failover.yml / switchover.yml include it)."""
    inventory = ansible.workdir / "promote.ini"
    inventory.write_text(
        "[postgresql]\n"
        f"standby ansible_connection=local ansible_python_interpreter={sys.executable} ansible_become=false"
        f" postgresql_port={standby.port}\n")
    play = ansible.workdir / "promote.yml"
    task = {"name": "promote", "ansible.builtin.include_role": {
        "name": "dbops.datastores.postgresql", "tasks_from": "promote.yml"}}
    if after_lsn is not None:
        task["vars"] = {"postgresql_promote_after_lsn": after_lsn}
    play.write_text(json.dumps([{"hosts": "postgresql", "gather_facts": False, "tasks": [task]}]))
    return ansible.playbook(play, inventory=inventory, env={"PGPASSWORD": primary_password},
                            extra_vars={"__postgresql_socket_dir": str(standby.socket_dir)})


@pytest.mark.parametrize("stop", ["failover", "switchover"])
def test_promote_waits_for_the_wal_and_promotes(ansible, fresh_pair, stop):
    """failover: no LSN, the target replays what it received; switchover: the old primary's
    shutdown checkpoint (read from its stopped data directory), replayed past its start."""
    primary, standby = fresh_pair
    primary.query("CREATE TABLE written_last AS SELECT 1 AS id")
    stop_pid(primary.pid, signal.SIGINT)  # a clean stop: the standby receives the shutdown checkpoint
    lsn = None
    if stop == "switchover":
        controldata = subprocess.run(
            [str(pg_harness.bindir_for(primary.major) / "pg_controldata"), str(primary.datadir)],
            capture_output=True, text=True, check=True).stdout
        lsn = re.search(r"^Latest checkpoint location:\s*(\S+)$", controldata, re.M).group(1)
    result = promote(ansible, standby, primary.password, after_lsn=lsn)
    assert result.rc == 0, result.stdout
    assert standby.query("SELECT pg_is_in_recovery()")[0][0] is False
    assert standby.query("SELECT count(*) FROM written_last")[0][0] == 1
