"""pgBackRest on the replicated cluster: repository host repo1, database hosts pg1-pg3
(molecule/cluster; side_effect took a backup from a standby and restored pg1 to a point in time)."""

import json

import testinfra

DB = {name: testinfra.get_host(f"podman://{name}") for name in ("pg1", "pg2", "pg3")}
REPO = testinfra.get_host("podman://repo1")
HOSTS = {**DB, "repo1": REPO}
PASSPHRASE = "molecule-cluster-passphrase-3c81d07a"
REPO_PATH = "/var/lib/pgbackrest"
DATA_DIR = "/var/lib/postgresql/15/main"
# After the failover and rejoin (test_cluster.py)
PRIMARY = "pg3"


def psql(name: str, sql: str, database: str = "postgres") -> str:
    return DB[name].check_output("runuser -u postgres -- psql -XAt -d %s -c %s", database, sql)


def test_point_in_time_restore_kept_the_marker_before_the_target_only():
    # pg1 was restored to the target time; its timeline replicated through switchover and failover
    for name in DB:
        assert psql(name, "SELECT string_agg(name, ',' ORDER BY name) FROM pitr_markers", "appdb") == "before"


def test_no_recovery_target_left_on_any_node():
    # pg1's restore wrote one; a base backup of pg1 would have carried it to the rebuilt standbys
    for name, host in DB.items():
        auto = host.file(f"{DATA_DIR}/postgresql.auto.conf").content_string
        assert "recovery_target" not in auto, (name, auto)


def test_backup_from_a_standby_in_the_repository_log():
    log = REPO.check_output("cat /var/log/pgbackrest/main-backup.log")
    assert "backup-standby" in log
    assert "replay on the standby reached" in log


def test_stanza_config_lists_the_primary_first_and_backs_up_from_a_standby():
    conf = REPO.file("/etc/pgbackrest/pgbackrest.conf").content_string
    assert "backup-standby=y" in conf
    hosts = [line.split("=", 1)[1] for line in conf.splitlines()
             if line.startswith("pg") and "-host=" in line]
    assert hosts == ["pg1", "pg2", "pg3"], hosts


def test_repository_read_from_every_database_host_over_tls():
    for name, host in DB.items():
        info = host.run("runuser -u postgres -- pgbackrest --stanza=main info --output=json")
        assert info.rc == 0, (name, info.stderr)
        stanza = json.loads(info.stdout)[0]
        assert stanza["status"]["code"] == 0, (name, stanza["status"])
        assert any(b["type"] == "full" for b in stanza["backup"]), name
        # the newest archived WAL is on the timeline of the failover (restore 2, switchover 3, failover 4)
        assert int(stanza["archive"][-1]["max"][:8], 16) == 4, stanza["archive"]
        listing = host.run("runuser -u postgres -- pgbackrest --stanza=main repo-ls archive/main")
        assert listing.rc == 0, (name, listing.stderr)
        assert "archive.info" in listing.stdout.split()


def test_archiving_works_on_the_primary():
    ok = psql(PRIMARY,
              "SELECT last_archived_time IS NOT NULL AND"
              " (last_failed_time IS NULL OR last_archived_time > last_failed_time) FROM pg_stat_archiver")
    assert ok == "t"
    assert REPO.run("runuser -u pgbackrest -- pgbackrest --stanza=main check").rc == 0


def test_repository_holds_only_ciphertext():
    # migrate.yml's table names are readable in the cluster's own files ...
    table = "dbops_schema_history"
    assert DB[PRIMARY].run("grep -a -r -l -m1 %s %s/base", table, DATA_DIR).rc == 0
    # ... and nowhere in the repository, which holds a full backup of them and the WAL since.
    found = REPO.run("grep -a -r -l %s %s", table, REPO_PATH)
    assert found.rc == 1, found.stdout
    wal = REPO.check_output("find %s/archive/main -type f -name '0*' | head -1", REPO_PATH)
    magic = REPO.check_output("head -c 8 %s | od -An -c", wal)
    assert "Salted__" in magic.replace(" ", ""), magic


def test_passphrase_only_in_the_repository_config():
    for name, host in HOSTS.items():
        assert PASSPHRASE not in host.check_output("ps -eo args"), name
        cron = host.run("cat /var/spool/cron/crontabs/* /etc/crontab /etc/cron.d/* 2>/dev/null")
        assert PASSPHRASE not in cron.stdout, name
        found = host.run("grep -r -l -F %s /var/log /etc /var/spool /srv 2>/dev/null", PASSPHRASE)
        expected = ["/etc/pgbackrest/pgbackrest.conf"] if name == "repo1" else []
        assert found.stdout.split() == expected, (name, found.stdout)


def test_files_and_owners():
    repo = REPO.file(REPO_PATH)
    assert (repo.user, repo.group, repo.mode) == ("pgbackrest", "pgbackrest", 0o700)
    conf = REPO.file("/etc/pgbackrest/pgbackrest.conf")
    assert (conf.user, conf.mode) == ("pgbackrest", 0o600)
    assert REPO.run("find %s ! -type l -perm /o=rwx", REPO_PATH).stdout == ""
    assert REPO.service("pgbackrest").is_running
    for name, host in DB.items():
        conf = host.file("/etc/pgbackrest/pgbackrest.conf")
        assert (conf.user, conf.mode) == ("postgres", 0o640), name
        assert "cipher" not in conf.content_string
        key = host.file("/etc/pgbackrest/tls/host.key")
        assert (key.user, key.mode) == ("postgres", 0o600), name
        command = psql(name, "SELECT current_setting('archive_command')")
        assert command == "pgbackrest --stanza=main archive-push %p"


def test_schedules_on_the_repository_host_only():
    crontab = REPO.check_output("crontab -l -u pgbackrest")
    # the cron jobs run the wrapper that reports to monitoring, never bare pgbackrest
    for kind in ("full", "diff", "incr"):
        assert (f"/usr/local/bin/dbops-pgbackrest-backup --stanza=main --type={kind} "
                "--lock-file=/var/spool/pgbackrest/dbops-backup-main.lock "
                "--textfile-dir=/var/lib/prometheus/node-exporter") in crontab
    assert "pgbackrest --stanza" not in crontab
    for name, host in DB.items():
        pg_crontab = host.run("crontab -l -u postgres")
        assert pg_crontab.rc != 0 or "pgbackrest" not in pg_crontab.stdout, name
