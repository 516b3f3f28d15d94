"""The backup job option ``from``: which node of a replicated cluster takes the backup, and a dump
cancelled by a recovery conflict on a standby (no server needed)."""

from __future__ import annotations

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_cli as cli
from ansible_collections.dbops.datastores.plugins.module_utils import _pg_backup as pgb
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

PRIMARY = {"host": "pg1", "cluster_name": "main", "role": "primary", "standbys": 2}
LONELY_PRIMARY = {**PRIMARY, "standbys": 0}
STANDBY = {"host": "pg2", "cluster_name": "main", "role": "standby"}

# What pg_dump 15 prints when a standby cancels its COPY to replay a VACUUM of the primary.
CONFLICT_STDERR = (
    'pg_dump: error: Dumping the contents of table "accounts" failed: PQgetResult() failed.\n'
    "pg_dump: detail: Error message from server: ERROR:  canceling statement due to conflict with recovery\n"
    "DETAIL:  User query might have needed to see row versions that must be removed.\n"
    "pg_dump: detail: Command was: COPY public.accounts (id, balance) TO stdout;\n"
)


@pytest.mark.parametrize(("wanted", "node", "runs"), [
    ("primary", PRIMARY, True),
    ("primary", STANDBY, False),
    ("standby", STANDBY, True),
    ("standby", PRIMARY, False),
    ("standby", LONELY_PRIMARY, False),
    ("prefer_standby", STANDBY, True),
    ("prefer_standby", PRIMARY, False),
    ("prefer_standby", LONELY_PRIMARY, True),
    ("any", PRIMARY, True),
    ("any", STANDBY, True),
])
def test_which_node_takes_the_backup(wanted, node, runs):
    why = pgb.wrong_node(wanted, node)
    assert (why is None) is runs
    if not runs:
        assert why.startswith(f"{node['host']} (main) is ")


def test_wrong_node_reasons_name_the_node_and_the_rule():
    assert pgb.wrong_node("standby", PRIMARY) == (
        "pg1 (main) is the primary (not in recovery) and the job runs from a standby")
    assert pgb.wrong_node("primary", STANDBY) == (
        "pg2 (main) is a standby (in recovery) and the job runs from the primary")
    assert "2 standby(s) are connected to it" in pgb.wrong_node("prefer_standby", PRIMARY)


def test_a_recovery_conflict_is_named_with_its_remedy():
    with pytest.raises(DbopsError) as caught:
        pgb._check_result(1, CONFLICT_STDERR, "back up PostgreSQL database app with pg_dump")
    msg = caught.value.msg
    assert msg.startswith("back up PostgreSQL database app with pg_dump: "
                          "a recovery conflict cancelled the dump")
    assert "hot_standby_feedback = on" in msg and "max_standby_streaming_delay" in msg
    assert "canceling statement due to conflict with recovery" in msg
    assert caught.value.details == {"recovery_conflict": True}
    # Any other failure keeps its own message.
    with pytest.raises(DbopsError) as other:
        pgb._check_result(1, 'pg_dump: error: query failed: ERROR:  permission denied for table t\n', "dump")
    assert "recovery conflict" not in other.value.msg
    assert pgb.recovery_conflict(CONFLICT_STDERR) and not pgb.recovery_conflict("permission denied")


def test_from_is_one_option_of_the_spec_the_module_and_the_config_share():
    spec = pgb.backup_option_spec()["from"]
    assert spec == {"type": "str", "default": "primary",
                    "choices": ["primary", "standby", "prefer_standby", "any"]}
    job = {"engine": "postgresql", "database": "app"}
    assert cli.check_job(job, "cfg")["from"] == "primary"
    assert cli.check_job({**job, "from": "standby"}, "cfg")["from"] == "standby"
    with pytest.raises(cli.ConfigError, match=r"from must be one of primary, standby, prefer_standby, any"):
        cli.check_job({"engine": "postgresql", "database": "app", "from": "replica"}, "cfg backups[0]")
    # MongoDB jobs have no such option (a secondary read is not offered): an unknown option.
    with pytest.raises(cli.ConfigError, match="unknown option from"):
        cli.check_job({"engine": "mongodb", "database": "app", "from": "standby"}, "cfg backups[0]")
    with pytest.raises(DbopsError, match="unknown from 'replica'"):
        pgb.validate_options({"database": "a", "format": "custom", "from": "replica"})
    assert pgb.plan_backup({"database": "a", "format": "custom", "from": "standby"})["from"] == "standby"


def test_ignore_from_takes_the_job_on_this_node():
    job = {"engine": "postgresql", "database": "app", "from": "standby", "min_interval": "1h"}
    assert cli._backup_options(job) == {"database": "app", "from": "standby"}
    assert cli._backup_options(job, ignore_from=True) == {"database": "app", "from": "any"}
