"""The repository host and its clients after converge and side_effect (molecule/backup_repo)."""

import json
import time

import testinfra

HOSTS = {name: testinfra.get_host(f"podman://{name}") for name in ("bpg1", "bmongo1", "brepo1")}
PG, MONGO, REPO = HOSTS["bpg1"], HOSTS["bmongo1"], HOSTS["brepo1"]
PASSPHRASE = "molecule-repo-passphrase-7f3a9c2e1b"
TABLE = "secret_ledger_entries"
REPO_PATH = "/var/lib/pgbackrest"
DATA_DIR = "/var/lib/postgresql/15/main"


def psql(sql: str) -> str:
    return PG.check_output("runuser -u postgres -- psql -XAt -c %s", sql)


def test_repository_holds_backups_and_wal():
    files = REPO.run("find %s -type f", REPO_PATH)
    assert files.rc == 0
    paths = files.stdout.split()
    assert any("/backup/main/" in p for p in paths), paths
    assert any("/archive/main/" in p for p in paths), paths


def test_repository_holds_only_ciphertext():
    # The table name is readable in the cluster's own files (so the grep below can find it) ...
    assert PG.run("grep -a -r -l -m1 %s %s/base", TABLE, DATA_DIR).rc == 0
    # ... and nowhere in the repository, though it holds a full and an incremental backup of them.
    found = REPO.run("grep -a -r -l %s %s", TABLE, REPO_PATH)
    assert found.rc == 1, found.stdout
    # The WAL in the archive is encrypted too (a plain zst frame starts with 28 b5 2f fd).
    wal = REPO.check_output("find %s/archive/main -type f -name '0*' | head -1", REPO_PATH)
    magic = REPO.check_output("head -c 8 %s | od -An -c", wal)
    assert "Salted__" in magic.replace(" ", ""), magic


def test_passphrase_only_in_the_repository_config():
    for name, host in HOSTS.items():
        args = host.check_output("ps -eo args")
        assert PASSPHRASE not in args, name
        cron = host.run("cat /var/spool/cron/crontabs/* /etc/crontab /etc/cron.d/* 2>/dev/null")
        assert PASSPHRASE not in cron.stdout, name
        logs = host.run("grep -r -l -F %s /var/log /etc /var/spool /srv 2>/dev/null", PASSPHRASE)
        expected = "/etc/pgbackrest/pgbackrest.conf" if name == "brepo1" else ""
        assert logs.stdout.split() == ([expected] if expected else []), (name, logs.stdout)
        journal = host.run("journalctl --no-pager -q 2>/dev/null | grep -c -F %s", PASSPHRASE)
        assert journal.stdout.strip() in ("", "0"), name


def test_repository_host_files_and_owners():
    repo = REPO.file(REPO_PATH)
    assert (repo.user, repo.group, repo.mode) == ("pgbackrest", "pgbackrest", 0o700)
    conf = REPO.file("/etc/pgbackrest/pgbackrest.conf")
    assert (conf.user, conf.mode) == ("pgbackrest", 0o600)
    key = REPO.file("/etc/pgbackrest/tls/host.key")
    assert (key.user, key.mode) == ("pgbackrest", 0o600)
    assert REPO.file("/etc/pgbackrest/tls").mode == 0o700
    # Nothing in the repository is readable by others.
    others = REPO.run("find %s ! -type l -perm /o=rwx", REPO_PATH)
    assert others.stdout == "", others.stdout
    assert REPO.service("pgbackrest").is_running
    assert REPO.check_output("systemctl show -p User --value pgbackrest") == "pgbackrest"


def test_database_host_files_and_owners():
    conf = PG.file("/etc/pgbackrest/pgbackrest.conf")
    assert (conf.user, conf.mode) == ("postgres", 0o640)
    assert "cipher" not in conf.content_string
    key = PG.file("/etc/pgbackrest/tls/host.key")
    assert (key.user, key.mode) == ("postgres", 0o600)
    spool = PG.file("/var/spool/pgbackrest")
    assert (spool.user, spool.mode) == ("postgres", 0o700)
    settings = psql("SELECT current_setting('archive_mode') || ' ' || current_setting('archive_command')")
    assert settings == "on pgbackrest --stanza=main archive-push %p"


def test_schedules_on_the_repository_host():
    crontab = REPO.check_output("crontab -l -u pgbackrest")
    # the cron jobs run the wrapper that reports to monitoring, never bare pgbackrest
    for kind in ("full", "diff", "incr"):
        assert (f"/usr/local/bin/dbops-pgbackrest-backup --stanza=main --type={kind} "
                "--lock-file=/var/spool/pgbackrest/dbops-backup-main.lock "
                "--textfile-dir=/var/lib/prometheus/node-exporter") in crontab
    assert "pgbackrest --stanza" not in crontab
    pg_crontab = PG.run("crontab -l -u postgres")
    assert pg_crontab.rc != 0 or "pgbackrest" not in pg_crontab.stdout


def test_scheduled_backup_wrote_its_metrics():
    # side_effect ran the crontab's incremental job (the wrapper) once, as cron would.
    path = "/var/lib/prometheus/node-exporter/dbops_pgbackrest_main.prom"
    metrics = REPO.file(path)
    assert (metrics.user, metrics.mode) == ("pgbackrest", 0o644)
    samples = {}
    for line in metrics.content_string.splitlines():
        if line and not line.startswith("#"):
            name, number = line.rsplit(" ", 1)
            samples[name] = float(number)
    info_json = REPO.check_output("runuser -u pgbackrest -- pgbackrest --stanza=main info --output=json")
    info = json.loads(info_json)[0]
    incr = [b for b in info["backup"] if b["type"] == "incr"][-1]
    full = [b for b in info["backup"] if b["type"] == "full"][-1]
    incr_labels, full_labels = '{stanza="main",type="incr"}', '{stanza="main",type="full"}'
    assert samples["dbops_pgbackrest_backup_last_run_success" + incr_labels] == 1
    assert samples["dbops_pgbackrest_backup_last_run_exit_code" + incr_labels] == 0
    # written after the incremental ended, an hour at most before this check
    run_at = samples["dbops_pgbackrest_backup_last_run_timestamp_seconds" + incr_labels]
    assert incr["timestamp"]["stop"] <= run_at <= time.time() + 5
    assert time.time() - run_at < 3600
    last_success = "dbops_pgbackrest_backup_last_success_timestamp_seconds"
    assert samples[last_success + incr_labels] == incr["timestamp"]["stop"]
    assert samples[last_success + full_labels] == full["timestamp"]["stop"]
    newest = samples['dbops_pgbackrest_newest_backup_timestamp_seconds{stanza="main"}']
    assert newest == incr["timestamp"]["stop"]
    assert samples["dbops_pgbackrest_backup_size_bytes" + incr_labels] == incr["info"]["size"] > 1_000_000
    assert samples['dbops_pgbackrest_info_success{stanza="main"}'] == 1
    # no run of the other types yet (cron has not fired them): no last-run gauge for them
    assert "dbops_pgbackrest_backup_last_run_success" + full_labels not in samples
    directory = REPO.file("/var/lib/prometheus/node-exporter")
    assert (directory.user, directory.group, directory.mode) == ("root", "pgbackrest", 0o2775)


def test_node_exporter_serves_the_pgbackrest_metrics():
    # site.yml runs db_monitoring on the repository host: what Prometheus scrapes there.
    scraped = REPO.check_output(
        "python3 -c %s",
        "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9100/metrics').read().decode())")
    lines = [line for line in scraped.splitlines()
             if line.startswith("dbops_pgbackrest_backup_last_run_success")]
    assert lines == ['dbops_pgbackrest_backup_last_run_success{stanza="main",type="incr"} 1'], lines


def test_archiving_recovered_after_the_repository_host_was_down():
    # side_effect stopped brepo1 for a while; whatever failed then has been archived since.
    ok = psql(
        "SELECT last_archived_time IS NOT NULL"
        " AND (last_failed_time IS NULL OR last_archived_time > last_failed_time) FROM pg_stat_archiver"
    )
    assert ok == "t"


def test_restic_account_is_sftp_only_in_its_chroot():
    config = REPO.check_output("sshd -T -C user=dbops-restic,host=bpg1,addr=127.0.0.1")
    lines = set(config.splitlines())
    assert "forcecommand internal-sftp" in lines
    assert "chrootdirectory /srv/restic" in lines
    assert "authenticationmethods publickey" in lines
    assert "permittty no" in lines
    # one repository per database host, private to the account, and restic's data in it
    for name in ("bpg1", "bmongo1"):
        repo = REPO.file(f"/srv/restic/{name}")
        assert (repo.user, repo.mode) == ("dbops-restic", 0o700)
    assert REPO.file("/srv/restic/bmongo1/config").exists
    keys = REPO.file("/etc/ssh/authorized_keys/dbops-restic")
    assert (keys.user, keys.mode) == ("root", 0o644)
    assert keys.content_string.count("restrict ssh-ed25519 ") == 2


KEY_OPTS = "-i /etc/dbops/restic/id_ed25519 -o UserKnownHostsFile=/etc/dbops/restic/known_hosts"
SFTP = f"runuser -u dbbackup -- sftp -b - {KEY_OPTS} dbops-restic@brepo1"


def test_restic_account_gets_no_shell():
    # The database host's own key: SFTP works inside the chroot, a command does not.
    shell = MONGO.run(f"timeout 20 runuser -u dbbackup -- ssh {KEY_OPTS} dbops-restic@brepo1 id </dev/null")
    assert "uid=" not in shell.stdout
    listing = MONGO.run(f"echo 'ls /srv/restic/bmongo1' | {SFTP}")
    assert listing.rc == 0, listing.stdout + listing.stderr
    assert "config" in listing.stdout
    outside = MONGO.run(f"echo 'ls /etc' | {SFTP}")
    assert "passwd" not in outside.stdout
