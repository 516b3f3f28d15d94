"""db_backup: files, permissions, cron entries, and a real run of the scheduled commands."""

import json
import re

import pytest

SECRETS = ("pg-backup-secret-1", "mongo-backup-secret-1")
CRON = "/etc/cron.d/dbops-backup"


def cron_commands(host) -> dict[str, tuple[str, str]]:
    """name -> (schedule, command) from the cron file."""
    entries = {}
    name = None
    for line in host.file(CRON).content_string.splitlines():
        if line.startswith("#Ansible: "):
            name = line.removeprefix("#Ansible: ")
        elif name and line.strip():
            fields = line.split(None, 6)
            entries[name] = (" ".join(fields[:5]), fields[6])
            assert fields[5] == "dbbackup"
            name = None
    return entries


def test_cron_entries_with_schedules(host):
    entries = cron_commands(host)
    assert entries["dbops backup"][0] == "15 1 * * *"
    assert entries["dbops retention"][0] == "30 5 * * *"
    assert entries["dbops verify with restore test"][0] == "0 3 * * 6"
    assert (
        "verify --restore-test --config /etc/dbops/backup.json"
        in entries["dbops verify with restore test"][1]
    )
    assert host.service("cron").is_running


@pytest.mark.parametrize(
    ("path", "mode", "owner"),
    [
        ("/var/backups/dbops", 0o700, "dbbackup"),
        ("/etc/dbops/credentials", 0o700, "dbbackup"),
        ("/etc/dbops/credentials/postgresql", 0o600, "dbbackup"),
        ("/etc/dbops/credentials/mongodb", 0o600, "dbbackup"),
        ("/etc/dbops", 0o750, "root"),
        ("/etc/dbops/backup.json", 0o640, "root"),  # root's: restore.yml runs restic from it as root
    ],
)
def test_permissions(host, path, mode, owner):
    f = host.file(path)
    assert f.exists
    assert f.mode == mode
    assert f.user == owner


def test_credentials_hold_the_passwords(host):
    with host.sudo():
        assert host.file("/etc/dbops/credentials/postgresql").content_string.strip() == SECRETS[0]


def test_no_secret_in_crontab_config_or_world_readable_files(host):
    for secret in SECRETS:
        assert secret not in host.file(CRON).content_string
        assert secret not in host.file("/etc/dbops/backup.json").content_string
        found = host.run(
            f"find /etc /opt/dbops /var/log/dbops /var/backups/dbops /usr/local/bin -xdev -type f -perm -o=r "
            f"-exec grep -l -F -- '{secret}' {{}} +"
        )
        assert found.stdout.strip() == "", found.stdout


def test_logrotate_config_is_valid(host):
    result = host.run("logrotate -d /etc/logrotate.d/dbops-backup")
    assert result.rc == 0, result.stderr
    assert "/var/log/dbops/*.log" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def backup_run(host):
    """Run the backup cron command once, as cron would, watching argv for secrets meanwhile."""
    _user, command = cron_commands(host)["dbops backup"]
    watcher = host.run(
        'nohup sh -c \'for i in $(seq 1 300); do cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "; '
        "echo; sleep 0.05; done' > /tmp/argv-watch.txt 2>&1 & echo $!"
    )
    result = host.run(f"su -s /bin/sh dbbackup -c {json.dumps(command)}")
    host.run(f"kill {watcher.stdout.strip()}")
    return result


def test_cron_backup_command_produces_backups(host, backup_run):
    assert backup_run.rc == 0, host.file("/var/log/dbops/dbops-backup.err.log").content_string
    last = json.loads(host.file("/var/log/dbops/dbops-backup.log").content_string.strip().splitlines()[-1])
    assert last["ok"] is True, last
    assert {(b["engine"], b["database"]) for b in last["backups"]} == {
        ("postgresql", "appdb"),
        ("mongodb", "appdb"),
    }
    assert all(b["ok"] for b in last["backups"])


def test_no_secret_in_argv_during_the_run(host, backup_run):
    watched = host.file("/tmp/argv-watch.txt").content_string
    # the watch overlapped the run and saw the dump tool's command line
    assert "dbops-backup.py backup --config" in watched
    assert "pg_dump" in watched
    for secret in SECRETS:
        assert secret not in watched


def test_verify_cron_command_restores_and_verifies(host, backup_run):
    _user, command = cron_commands(host)["dbops verify with restore test"]
    result = host.run(f"su -s /bin/sh dbbackup -c {json.dumps(command)}")
    assert result.rc == 0, host.file("/var/log/dbops/dbops-backup.log").content_string
    last = json.loads(host.file("/var/log/dbops/dbops-backup.log").content_string.strip().splitlines()[-1])
    assert last["command"] == "verify"
    assert len(last["verifications"]) == 2
    assert all(v["ok"] and v["kind"] == "restore" for v in last["verifications"]), last


def test_retention_cron_command_runs(host, backup_run):
    _user, command = cron_commands(host)["dbops retention"]
    result = host.run(f"su -s /bin/sh dbbackup -c {json.dumps(command)}")
    assert result.rc == 0
    last = json.loads(host.file("/var/log/dbops/dbops-backup.log").content_string.strip().splitlines()[-1])
    assert last["command"] == "retention"
    assert last["ok"] is True
    assert last["retention"]["kept"] >= 2


def test_backup_files_are_private(host, backup_run):
    listing = host.run("find /var/backups/dbops -mindepth 1 -printf '%m %u %p\\n'").stdout.splitlines()
    assert listing
    for line in listing:
        mode, user, _rest = line.split(" ", 2)
        assert user == "dbbackup", line
        assert re.fullmatch(r"[67]00", mode), line


def scrape(host) -> str:
    """What Prometheus would scrape from the node exporter on the host."""
    result = host.run(
        "python3 -c \"import urllib.request; "
        "print(urllib.request.urlopen('http://127.0.0.1:9100/metrics', timeout=10).read().decode())\""
    )
    assert result.rc == 0, result.stderr
    return result.stdout


def test_node_exporter_listens_where_the_inventory_says(host):
    assert host.service("prometheus-node-exporter").is_running
    assert host.socket("tcp://127.0.0.1:9100").is_listening
    assert not host.socket("tcp://0.0.0.0:9100").is_listening


def test_node_exporter_serves_the_backup_metrics(host, backup_run):
    metrics = scrape(host)
    assert 'dbops_backup_success{database="appdb",engine="postgresql"} 1' in metrics
    assert 'dbops_backup_success{database="appdb",engine="mongodb"} 1' in metrics
    assert 'dbops_backup_run_success{command="backup"} 1' in metrics
    assert "node_textfile_scrape_error 0" in metrics


def test_a_failing_job_shows_in_the_metrics(host, backup_run):
    config = json.loads(host.file("/etc/dbops/backup.json").content_string)
    config["backups"] = [{"engine": "postgresql", "database": "no_such_db"}]
    host.run("install -o dbbackup -g dbbackup -m 0600 /dev/null /tmp/failing.json")
    host.run(f"cat > /tmp/failing.json <<'EOF'\n{json.dumps(config)}\nEOF")
    result = host.run("su -s /bin/sh dbbackup -c 'dbops-backup backup --config /tmp/failing.json'")
    assert result.rc == 1, result.stdout + result.stderr
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["ok"] is False and "metrics_error" not in line
    metrics = scrape(host)
    assert 'dbops_backup_success{database="no_such_db",engine="postgresql"} 0' in metrics
    assert 'dbops_backup_run_success{command="backup"} 0' in metrics
    failed_at = r'dbops_backup_last_failure_timestamp_seconds\{database="no_such_db",engine="postgresql"\} \d'
    assert re.search(failed_at, metrics)
    assert 'dbops_backup_success{database="appdb",engine="postgresql"} 1' in metrics  # the good job kept


def test_health_cron_command_writes_health_metrics(host):
    _user, command = cron_commands(host)["dbops health"]
    result = host.run(f"su -s /bin/sh dbbackup -c {json.dumps(command)}")
    assert result.rc == 0
    last = json.loads(host.file("/var/log/dbops/dbops-health.log").content_string.strip().splitlines()[-1])
    assert last["ok"] is True, last
    metrics = scrape(host)
    assert 'dbops_health_up{engine="postgresql"} 1' in metrics
    assert 'dbops_health_up{engine="mongodb"} 1' in metrics
    assert re.search(r'dbops_health_score\{engine="postgresql"\} \d+', metrics)
    # the test server reports no connection limit: no ratio sample, never 100 %
    assert 'dbops_health_connections_used_ratio{engine="mongodb"}' not in metrics
    for secret in SECRETS:
        assert secret not in metrics


def test_alert_rules_installed_where_the_inventory_says(host):
    rules = host.file("/etc/prometheus/rules/dbops-molecule.yml")
    assert rules.exists and rules.mode == 0o644
    assert "time() - dbops_backup_last_success_timestamp_seconds > 7200" in rules.content_string
