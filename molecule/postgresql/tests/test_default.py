"""Outcomes of the postgresql role on the converged container (testinfra, podman backend)."""

import pytest

PSQL = "psql -X -At -h 127.0.0.1 -p 5432"


def sql_as(host, user: str, password: str, sql: str, db: str = "appdb"):
    return host.run(f"PGPASSWORD='{password}' {PSQL} -U {user} -d {db} -c \"{sql}\"")


def test_service_active_and_enabled(host):
    for name in ("postgresql@15-main", "postgresql"):
        service = host.service(name)
        assert service.is_running, name
        assert service.is_enabled, name


def test_listening_on_all_addresses(host):
    assert host.socket("tcp://0.0.0.0:5432").is_listening


def test_app_user_connects_with_scram(host):
    result = sql_as(host, "app", "app-secret-1", "SELECT current_user || ' ' || current_database()")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "app appdb"
    stored = host.run(
        'su postgres -c "psql -At -c \\"SELECT rolpassword FROM pg_authid WHERE rolname = \'app\'\\""'
    )
    assert stored.stdout.startswith("SCRAM-SHA-256$")


def test_wrong_password_refused(host):
    result = sql_as(host, "app", "wrong-password", "SELECT 1")
    assert result.rc != 0
    assert "password authentication failed" in result.stderr


def test_unlisted_database_refused_over_tcp(host):
    # pg_hba grants app only appdb from anywhere; postgres db from 127.0.0.1 via the "all" entry.
    result = host.run(
        f"PGPASSWORD=app-secret-1 psql -X -At -h {host_ip(host)} -p 5432 -U app -d postgres -c 'SELECT 1'"
    )
    assert result.rc != 0
    assert "no pg_hba.conf entry" in result.stderr


def host_ip(host) -> str:
    return host.run("hostname -I").stdout.split()[0]


def test_absent_user_does_not_exist(host):
    result = host.run(
        'su postgres -c "psql -At -c \\"SELECT count(*) FROM pg_roles WHERE rolname = \'stale\'\\""'
    )
    assert result.stdout.strip() == "0"


def test_settings_file_applied(host):
    conf = host.file("/etc/postgresql/15/main/conf.d/50-dbops.conf")
    assert conf.user == "postgres"
    assert conf.contains("^log_min_duration_statement = 500$")
    result = sql_as(host, "app", "app-secret-1", "SHOW log_min_duration_statement")
    assert result.stdout.strip() == "500ms"


@pytest.fixture(scope="module")
def pids(host):
    return [host.file(f"/var/tmp/dbops-molecule/pid-{n}").content_string.strip() for n in range(3)]


def test_reload_only_change_keeps_the_server_process(host, pids):
    assert pids[0] and pids[0] == pids[1]
    assert sql_as(host, "app", "app-secret-1", "SHOW work_mem").stdout.strip() == "16MB"


def test_restart_needing_change_restarts(host, pids):
    assert pids[2] and pids[2] != pids[1]
    assert sql_as(host, "app", "app-secret-1", "SHOW shared_buffers").stdout.strip() == "160MB"
    pending = sql_as(host, "app", "app-secret-1", "SELECT count(*) FROM pg_settings WHERE pending_restart")
    assert pending.stdout.strip() == "0"


def test_rejected_setting_was_refused_without_reload_or_restart(host, pids):
    message = host.file("/var/tmp/dbops-molecule/rejected").content_string
    assert "the server rejects these settings (nothing was reloaded)" in message
    assert 'invalid value for parameter "work_mem": "lots"' in message
    assert pids[0] == pids[1]
