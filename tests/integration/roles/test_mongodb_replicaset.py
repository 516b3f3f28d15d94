"""The mongodb role's replica set phases (replicaset.yml, replicaset_members.yml) through
community.mongodb.mongodb_replicaset against the MongoDB-wire test server.

What the test server supports, and therefore what runs here: it answers ``hello`` as the primary
of the single-member set ``secantus`` (with ``setName``, ``hosts``) and ``replSetGetStatus``;
started with ``--standalone`` it answers ``hello`` without ``setName``. It has no
``replSetInitiate``, ``replSetGetConfig`` or ``replSetReconfig``: an initiation is only planned (check
mode) and the member reconfiguration is not run here (docs/roles.md says so)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from pymongo import MongoClient

from tests.harness.mongo import _server_binary
from tests.harness.proc import free_port, stop_pid, wait_for_port

VENV = Path(sys.executable).parent.parent


def run_phase(ansible, server_port, tasks_from, variables, check=False):
    base = {"mongodb_port": server_port, "mongodb_bind_ip": ["127.0.0.1"], "mongodb_python_venv": str(VENV),
            "mongodb_auth_enabled": False, "mongodb_replication_validate": False}
    play = {"hosts": "localhost", "gather_facts": False,
            "tasks": [{"name": "replica set phase", "ansible.builtin.include_role": {
                "name": "dbops.datastores.mongodb", "tasks_from": tasks_from},
                "vars": {**base, **variables}}]}
    path = ansible.workdir / f"rs_{tasks_from}_{len(list(ansible.workdir.glob('rs_*')))}.yml"
    path.write_text(json.dumps([play]))
    return ansible.playbook(path, check=check)


def task(run, name_part):
    found = [r for r in run.task_results() if name_part in r["_task"]]
    assert len(found) == 1, run.stdout[-3000:]
    return found[0]


@pytest.fixture
def standalone_server():
    """The test server without its single-member set advertisement (a mongod before initiation)."""
    base = Path(tempfile.mkdtemp(prefix="dbops-mongo-standalone-"))
    port = free_port()
    with (base / "server.log").open("ab") as out:
        argv = [_server_binary(), "--host", "127.0.0.1", "--port", str(port),
                "--storage-path", str(base / "data"), "--log-level", "WARNING", "--standalone"]
        proc = subprocess.Popen(argv,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=str(base))
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
        yield port
    finally:
        stop_pid(proc.pid)


def test_an_existing_set_of_that_name_is_left_alone(ansible, mongo_server):
    with MongoClient(mongo_server.host, mongo_server.port, directConnection=True) as client:
        hello = client.admin.command("hello")
    assert hello["setName"] == "secantus" and hello["isWritablePrimary"] is True
    members = [f"127.0.0.1:{mongo_server.port}"]
    for check in (True, False):
        run = run_phase(ansible, mongo_server.port, "replicaset.yml",
                        {"mongodb_replication_set_name": "secantus", "mongodb_replication_members": members},
                        check=check)
        assert run.rc == 0, run.stdout[-3000:]
        initiated = task(run, "Initiate the replica set from one member")
        assert initiated["changed"] is False and initiated["replica_set"] == "secantus"
        assert task(run, "Wait until a member is the primary").get("skipped") is True
    # Without members the role configures replSetName only: nothing runs.
    run = run_phase(ansible, mongo_server.port, "replicaset.yml",
                    {"mongodb_replication_set_name": "secantus"})
    assert run.rc == 0 and task(run, "Initiate the replica set from one member").get("skipped") is True


def test_a_set_of_another_name_is_refused(ansible, mongo_server):
    run = run_phase(ansible, mongo_server.port, "replicaset.yml",
                    {"mongodb_replication_set_name": "rs0",
                     "mongodb_replication_members": [f"127.0.0.1:{mongo_server.port}"]})
    assert run.rc != 0
    failed = task(run, "Initiate the replica set from one member")
    assert failed["msg"] == "The replica_set name of secantus does not match the expected: rs0"


def test_a_server_in_no_set_is_planned_for_initiation(ansible, standalone_server):
    members = [f"127.0.0.1:{standalone_server}"]
    variables = {"mongodb_replication_set_name": "rs0", "mongodb_replication_members": members}
    run = run_phase(ansible, standalone_server, "replicaset.yml", variables, check=True)
    assert run.rc == 0, run.stdout[-3000:]
    planned = task(run, "Initiate the replica set from one member")
    assert planned["changed"] is True and planned["replica_set"] == "rs0"
    # Only the initiator initiates: on another host of the play nothing is planned.
    run = run_phase(ansible, standalone_server, "replicaset.yml",
                    {**variables, "mongodb_replication_initiator": "mongo-other"}, check=True)
    assert run.rc == 0 and task(run, "Initiate the replica set from one member").get("skipped") is True
    # The default validation refuses a one-member set (three or more, an odd number of voters).
    run = run_phase(ansible, standalone_server, "replicaset.yml",
                    {**variables, "mongodb_replication_validate": True}, check=True)
    assert run.rc != 0
    refused = task(run, "Initiate the replica set from one member")
    assert "Invalid number of replicaset members" in refused["msg"]


def test_members_are_kept_only_on_the_primary_of_the_set(ansible, standalone_server, mongo_server):
    # A server in no set (writable, but not the set's primary) runs no reconfiguration; the test
    # server's primary has no replSetGetConfig, so the reconfiguration itself is not run here.
    run = run_phase(ansible, standalone_server, "replicaset_members.yml",
                    {"mongodb_replication_set_name": "rs0",
                     "mongodb_replication_members": [f"127.0.0.1:{standalone_server}"]})
    assert run.rc == 0, run.stdout[-3000:]
    asked = task(run, "Ask this member whether it is the primary")
    assert asked["replica_set"] is None and asked["is_primary"] is True
    assert task(run, "Reconfigure the members on the primary").get("skipped") is True
    run = run_phase(ansible, mongo_server.port, "replicaset_members.yml",
                    {"mongodb_replication_set_name": "secantus", "mongodb_replication_reconfigure": False,
                     "mongodb_replication_members": [f"127.0.0.1:{mongo_server.port}"]})
    assert run.rc == 0 and task(run, "Ask this member whether it is the primary").get("skipped") is True
