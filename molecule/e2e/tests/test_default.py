"""End to end: site.yml, migrate.yml, backup.yml, health.yml and rolling_restart.yml on two hosts."""

import json
import os
from pathlib import Path

import pytest
import testinfra
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
LOCAL = PROJECT / "inventories" / "local"
PG = testinfra.get_host("podman://e2e-pg1")
MONGO = testinfra.get_host("podman://e2e-mongo1")
FIXTURE = yaml.safe_load((PROJECT / "tests/fixtures/mongodb/octopus_schema.yml").read_text())


def vault() -> dict:
    secret = VaultSecret((LOCAL / "vault-password").read_bytes().strip())
    data = VaultLib([("local", secret)]).decrypt((LOCAL / "group_vars/all/vault.yml").read_bytes())
    return yaml.safe_load(data)


def psql(sql: str, database: str = "octopus_messenger") -> str:
    cmd = PG.run("runuser -u postgres -- psql -XAt -d %s -c %s", database, sql)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def mongo(script: str) -> dict:
    """Run a pymongo snippet with `db` bound to octopus_messenger (as the administrator)."""
    password = vault()["vault_mongodb_admin_password"]
    code = (
        "import json, pymongo\n"
        f"client = pymongo.MongoClient('127.0.0.1', 27017, username='admin', password={password!r},"
        " authSource='admin', directConnection=True)\n"
        "db = client.octopus_messenger\n"
        "restored = client.octopus_restored\n" + script
    )
    cmd = MONGO.run("/opt/dbops/mongodb-python/bin/python -c %s", code)
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout)


def catalog(host) -> dict:
    cmd = host.run("runuser -u dbbackup -- /usr/local/bin/dbops-backup info --config /etc/dbops/backup.json")
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    return json.loads(cmd.stdout)


def test_postgresql_migrated_to_010_as_the_owner():
    newest = "SELECT version FROM dbops_schema_history WHERE success ORDER BY installed_rank DESC LIMIT 1"
    assert psql(newest) == "010"
    assert psql("SELECT count(*) FROM dbops_schema_history WHERE type = 'versioned' AND success") == "10"
    assert psql("SELECT count(*) FROM dbops_schema_history WHERE NOT success") == "0"
    # Objects belong to the application's role, not to the superuser the playbook logs in as.
    owners = psql("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    assert owners.splitlines() == ["octopus_user"]
    assert psql("SELECT has_table_privilege('monitor', 'dbops_schema_history', 'SELECT')") == "t"


def test_mongodb_collections_indexes_views_and_data_migrations():
    state = mongo(
        "print(json.dumps({'names': sorted(db.list_collection_names()),"
        " 'indexes': sorted(db.messages.index_information()),"
        " 'history': sorted(str(r['version']) for r in db.dbops_schema_history.find({'success': True}))}))"
    )
    for collection in FIXTURE["octopus_mongodb_collections"]:
        assert collection["name"] in state["names"]
    for view in FIXTURE["octopus_mongodb_views"]:
        assert view["name"] in state["names"]
    assert "conversationId_1_timestamp_-1" in state["indexes"]
    assert state["history"] == ["1", "2"]


@pytest.mark.parametrize(("host", "engine"), [(PG, "postgresql"), (MONGO, "mongodb")])
def test_backups_exist_and_the_newest_is_verified(host, engine):
    groups = {(g["engine"], g["database"]): g for g in catalog(host)["groups"]}
    group = groups[(engine, "octopus_messenger")]
    # migrate.yml's backup (before the change, or after it for a database it created) and backup.yml's.
    assert group["count"] >= 2
    assert group["latest_verified"] == group["latest"]
    cron = host.file("/etc/cron.d/dbops-backup").content_string
    assert "17 * * * * dbbackup" in cron and "47 * * * * dbbackup" in cron


def test_restore_playbook_restored_both_engines_into_new_databases():
    tables = "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"
    assert psql(tables, "octopus_restored") == psql(tables)
    assert "service_instances" in psql(tables, "octopus_restored").split(",")
    state = mongo(
        "print(json.dumps({'source': sorted(db.list_collection_names()),"
        " 'restored': sorted(restored.list_collection_names()),"
        " 'indexes': sorted(restored.messages.index_information())}))"
    )
    assert state["restored"] == state["source"]
    assert "conversationId_1_timestamp_-1" in state["indexes"]


@pytest.mark.parametrize(("host", "service"), [(PG, "postgresql@15-main"), (MONGO, "mongod")])
def test_rolling_restart_restarted_each_server(host, service):
    before = host.file("/var/tmp/dbops-molecule/pid-before").content_string.strip()
    after = host.file("/var/tmp/dbops-molecule/pid-after").content_string.strip()
    assert after not in (before, "0")
    assert host.service(service).is_running


def test_health_report_covers_both_hosts():
    entries = {e["host"]: e for e in json.loads((EPHEMERAL / "health.json").read_text())}
    expected = {("e2e-pg1", "postgresql"), ("e2e-mongo1", "mongodb")}
    assert {(h, e["engine"]) for h, e in entries.items()} == expected
    for entry in entries.values():
        assert entry["error"] is None and entry["health"]["score"] is not None, entry
        assert entry["backup"]["stale"] is False, entry["backup"]
    assert entries["e2e-pg1"]["health"]["migrations"][0]["version"] == "010"
    page = (EPHEMERAL / "health.html").read_text()
    assert "End-to-end scenario" in page
    assert 'data-host="e2e-pg1"' in page and 'data-host="e2e-mongo1"' in page
    secrets = vault()
    assert not any(value in page for value in secrets.values())


def test_pg_monitor_reads_no_application_table():
    # health.yml and status.yml read the statistics views and the history table as the monitor
    # (test_health_report_covers_both_hosts); the application's tables stay unreadable.
    assert psql("SELECT has_table_privilege('monitor', 'public.service_instances', 'SELECT')") == "f"
    cmd = PG.run("runuser -u postgres -- psql -XAt -d octopus_messenger -c %s",
                 "SET ROLE monitor; SELECT count(*) FROM public.service_instances")
    assert cmd.rc != 0 and "permission denied for table service_instances" in cmd.stderr


BACKUP_PROBE = r"""
import json, sys
import pymongo
from pymongo.errors import OperationFailure
client = pymongo.MongoClient('127.0.0.1', 27017, username='dbops_backup', password=sys.argv[1],
                             authSource='admin', directConnection=True)
db = client.octopus_messenger
out = {}
for name, action in [
    ('read', lambda: db.messages.count_documents({})),
    ('write', lambda: db.messages.insert_one({'x': 1})),
    ('drop', lambda: db.messages.drop()),
    ('create_user', lambda: client.admin.command('createUser', 'intruder', pwd='x', roles=['root'])),
    ('scratch_write', lambda: client.dbops_verify.probe.insert_one({'x': 1})),
    ('scratch_drop', lambda: client.drop_database('dbops_verify')),
]:
    try:
        action()
        out[name] = 'ok'
    except OperationFailure as exc:
        out[name] = exc.code
print(json.dumps(out))
"""


def test_mongodb_backup_login_is_least_privilege():
    secrets = vault()
    MONGO.run("cat > /tmp/backup_probe.py <<'EOF'\n" + BACKUP_PROBE + "\nEOF")
    cmd = MONGO.run("/opt/dbops/mongodb-python/bin/python /tmp/backup_probe.py %s",
                    secrets["vault_mongodb_backup_password"])
    assert cmd.rc == 0, cmd.stderr
    assert json.loads(cmd.stdout) == {"read": "ok", "write": 13, "drop": 13, "create_user": 13,
                                      "scratch_write": "ok", "scratch_drop": "ok"}
    # The backup user's credentials file holds the backup login's password, not the administrator's.
    credentials = MONGO.file("/etc/dbops/credentials/mongodb")
    assert credentials.mode == 0o600 and credentials.user == "dbbackup"
    assert secrets["vault_mongodb_admin_password"] not in credentials.content_string
    assert secrets["vault_mongodb_backup_password"] in credentials.content_string
