"""A primary and two streaming standbys built by the postgresql role (molecule/cluster)."""

import time
import uuid

import pytest
import testinfra

HOSTS = {name: testinfra.get_host(f"podman://{name}") for name in ("pg1", "pg2", "pg3")}
STANDBYS = ["pg2", "pg3"]
PASSWORD = "repl:secret\\1"


def psql(name: str, sql: str, database: str = "postgres", check: bool = True):
    cmd = HOSTS[name].run("runuser -u postgres -- psql -XAt -v ON_ERROR_STOP=1 -d %s -c %s", database, sql)
    if check:
        assert cmd.rc == 0, cmd.stderr
    return cmd


def test_exactly_one_primary_and_two_streaming_standbys():
    in_recovery = {name: psql(name, "SELECT pg_is_in_recovery()").stdout.strip() for name in HOSTS}
    assert in_recovery == {"pg1": "f", "pg2": "t", "pg3": "t"}
    streaming = psql("pg1", "SELECT application_name || ':' || state FROM pg_stat_replication ORDER BY 1")
    assert streaming.stdout.split() == ["pg2:streaming", "pg3:streaming"]
    slots = psql("pg1", "SELECT slot_name || ':' || active FROM pg_replication_slots ORDER BY 1")
    assert slots.stdout.split() == ["pg2:t", "pg3:t"]
    for name in STANDBYS:
        receiver = psql(name, "SELECT status || ':' || slot_name FROM pg_stat_wal_receiver")
        assert receiver.stdout.strip() == f"streaming:{name}"


def test_data_written_on_the_primary_is_read_on_both_standbys():
    marker = uuid.uuid4().hex
    psql("pg1", f"CREATE TABLE IF NOT EXISTS t_repl (v text); INSERT INTO t_repl VALUES ('{marker}')", "appdb")
    for name in STANDBYS:
        for _ in range(50):
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


def test_wal_settings_for_rewind_and_feedback():
    for name in HOSTS:
        values = psql(name, "SELECT current_setting('wal_log_hints') || current_setting('hot_standby_feedback')")
        assert values.stdout.strip() == "onon"


def test_no_replication_password_on_disk_argv_or_log_except_the_passfile():
    for name, host in HOSTS.items():
        files = host.run(
            "grep -rlF -- %s /etc/postgresql /var/lib/postgresql /var/log/postgresql /proc/[0-9]*/cmdline",
            PASSWORD,
        )
        found = [line for line in files.stdout.split() if line]
        assert found == ["/var/lib/postgresql/15/main.replication.pgpass"] or found == [], (name, found)
        auto = host.file("/var/lib/postgresql/15/main/postgresql.auto.conf")
        assert "password" not in auto.content_string
        passfile = host.file("/var/lib/postgresql/15/main.replication.pgpass")
        assert passfile.mode == 0o600 and passfile.user == "postgres"
    conninfo = psql("pg2", "SHOW primary_conninfo").stdout
    assert "passfile=" in conninfo and "password" not in conninfo.replace("passfile", "")


def test_rolling_restart_restarted_the_standbys_before_the_primary():
    """side_effect ran rolling_restart.yml; converge had started the standbys after the primary."""
    started = {
        name: psql(name, "SELECT extract(epoch FROM pg_postmaster_start_time())").stdout.strip()
        for name in HOSTS
    }
    assert float(started["pg1"]) > max(float(started["pg2"]), float(started["pg3"])), started
