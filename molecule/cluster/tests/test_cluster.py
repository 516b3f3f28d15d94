"""A primary and two streaming standbys built by the postgresql role (molecule/cluster)."""

import json
import time
import uuid

import pytest
import testinfra

HOSTS = {name: testinfra.get_host(f"podman://{name}") for name in ("pg1", "pg2", "pg3")}
# side_effect switched the primary over from pg1 to pg2, failed over to pg3 while pg2's container
# was stopped, and rejoined pg2 as a standby of pg3.
PRIMARY = "pg3"
STANDBYS = ["pg1", "pg2"]
PASSWORD = "repl:secret\\1"


def psql(name: str, sql: str, database: str = "postgres", check: bool = True):
    cmd = HOSTS[name].run("runuser -u postgres -- psql -XAt -v ON_ERROR_STOP=1 -d %s -c %s", database, sql)
    if check:
        assert cmd.rc == 0, cmd.stderr
    return cmd


def test_exactly_one_primary_and_two_streaming_standbys():
    in_recovery = {name: psql(name, "SELECT pg_is_in_recovery()").stdout.strip() for name in HOSTS}
    assert in_recovery == {"pg1": "t", "pg2": "t", "pg3": "f"}
    streaming = psql(PRIMARY, "SELECT application_name || ':' || state FROM pg_stat_replication ORDER BY 1")
    assert streaming.stdout.split() == ["pg1:streaming", "pg2:streaming"]
    slots = psql(PRIMARY, "SELECT slot_name || ':' || active FROM pg_replication_slots ORDER BY 1")
    assert slots.stdout.split() == ["pg1:true", "pg2:true"]
    # three promotions: pg1 (point-in-time restore), pg2 (switchover) and pg3 (failover)
    timeline = psql(PRIMARY, "SELECT timeline_id FROM pg_control_checkpoint()").stdout.strip()
    assert int(timeline) == 4, timeline
    primary_address = HOSTS[PRIMARY].run("hostname -I").stdout.split()[0]
    for name in STANDBYS:
        # pg2 came back as a stale primary and was rewound: it streams from pg3 like pg1
        receiver = psql(name, "SELECT status || ':' || slot_name || ':' || sender_host"
                              " FROM pg_stat_wal_receiver")
        assert receiver.stdout.strip() == f"streaming:{name}:{primary_address}"
        # no slot left over from pg1's time as the primary
        assert psql(name, "SELECT count(*) FROM pg_replication_slots").stdout.strip() == "0"


def test_data_written_on_the_primary_is_read_on_both_standbys():
    marker = uuid.uuid4().hex
    psql(PRIMARY, "CREATE TABLE IF NOT EXISTS t_repl (v text)", "appdb")
    psql(PRIMARY, f"INSERT INTO t_repl VALUES ('{marker}')", "appdb")
    for name in STANDBYS:
        for _attempt in range(50):
            if psql(name, f"SELECT count(*) FROM t_repl WHERE v = '{marker}'", "appdb",
                    check=False).stdout.strip() == "1":
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"{name} did not replay the row")


@pytest.mark.parametrize("name", STANDBYS)
def test_standbys_refuse_writes(name):
    cmd = psql(name, "CREATE TABLE t_nope (v int)", "appdb", check=False)
    assert cmd.rc != 0
    assert "read-only transaction" in cmd.stderr


def test_migrations_recorded_once_on_the_primary_and_replayed_on_the_standbys():
    query = ("SELECT string_agg(version || ':' || n, ',' ORDER BY version) FROM"
             " (SELECT version, count(*) AS n FROM dbops_schema_history"
             "  WHERE success AND type = 'versioned' GROUP BY version) v")
    history = {name: psql(name, query, "octopus_messenger").stdout.strip() for name in HOSTS}
    expected = ",".join(f"{version:03d}:1" for version in range(1, 11))
    assert history == {name: expected for name in HOSTS}


def test_wal_settings_for_rewind_and_feedback():
    for name in HOSTS:
        values = psql(name, "SELECT current_setting('wal_log_hints') ||"
                            " current_setting('hot_standby_feedback')")
        assert values.stdout.strip() == "onon"


def test_no_replication_password_on_disk_argv_or_log_except_the_passfile():
    for name, host in HOSTS.items():
        # The pattern goes through a file written by a shell builtin: neither this shell's nor
        # grep's own command line may contain the password (grep would find itself).
        head, tail = PASSWORD.split(":", 1)
        files = host.run(
            "p=%s; printf '%%s:%%s\\n' \"$p\" %s > /run/dbops-pat && "
            "grep -rlF -f /run/dbops-pat /etc/postgresql /var/lib/postgresql /var/log/postgresql "
            "/proc/[0-9]*/cmdline; rm -f /run/dbops-pat",
            head, tail,
        )
        # The passfile holds it escaped (see below), so the literal is nowhere.
        found = [line for line in files.stdout.split() if line]
        assert found == [], (name, found)
        auto = host.file("/var/lib/postgresql/15/main/postgresql.auto.conf")
        assert "password" not in auto.content_string
        passfile = host.file("/var/lib/postgresql/15/main.replication.pgpass")
        assert passfile.mode == 0o600 and passfile.user == "postgres"
        assert passfile.content_string == "*:*:*:replicator:repl\\:secret\\\\1\n"
        # nor in any server log (a failed pg_rewind or base backup would print its connection string)
        logs = host.run("cat /var/log/postgresql/*.log")
        assert "password=" not in logs.stdout
    conninfo = psql("pg1", "SHOW primary_conninfo").stdout
    assert "passfile=" in conninfo and "password" not in conninfo.replace("passfile", "")


def test_backup_yml_backed_up_on_the_standbys_only():
    """side_effect ran backup.yml while pg1 was the primary; the job says `from: standby`."""
    for name, host in HOSTS.items():
        found = host.run("grep -l '\"role\": \"standby\"' /var/backups/dbops/*/manifest.json")
        manifests = [line for line in found.stdout.split() if line]
        if name == "pg1":
            assert manifests == [], manifests
        else:
            assert manifests, name
            manifest = json.loads(host.file(sorted(manifests)[-1]).content_string)
            assert manifest["database"] == "octopus_messenger"
            assert manifest["source"]["from"] == "standby"
            assert manifest["source"]["host"] == name
            assert manifest["source"]["replay_lsn"]


def test_rolling_restart_restarted_the_standbys_before_the_primary():
    """Start times saved by side_effect right after rolling_restart.yml (converge had started the
    standbys after the primary: their base backups came last)."""
    started = {name: float(host.file("/root/restart-started").content_string) for name, host in HOSTS.items()}
    assert started["pg1"] > max(started["pg2"], started["pg3"]), started


def test_switchover_write_unavailability():
    """The writer on pg3 wrote to pg1 until it stopped and to pg2 after the promotion."""
    lines = [line.split() for line in HOSTS["pg3"].file("/root/writes.log").content_string.splitlines()]
    on_old = [float(at) for at, node in lines if node == "pg1"]
    on_new = [float(at) for at, node in lines if node == "pg2"]
    assert on_old and on_new
    gap = min(t for t in on_new if t > max(on_old)) - max(on_old)
    print(f"switchover write unavailability: {gap:.2f} s")
    assert 0 < gap < 120
    # Every write the old primary acknowledged is on the new one (and, after the failover, on pg3).
    count = psql(PRIMARY, "SELECT count(*) FROM writes WHERE node = 'pg1'", "appdb").stdout.strip()
    assert int(count) == len(on_old)
