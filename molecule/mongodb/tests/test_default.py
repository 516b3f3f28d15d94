"""Outcomes of the mongodb role (test-only server flavour) on the converged container."""

import json

import pytest

PY = "/opt/dbops/mongodb-python/bin/python"

# Runs inside the container: connect, run one command, print a JSON outcome.
PROBE = r"""
import json, sys
from pymongo import MongoClient
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError
user, password, source, db, action = sys.argv[1:6]
kwargs = {"username": user, "password": password, "authSource": source} if user else {}
tls = {"plain": {}, "other-ca": {"tls": True, "tlsCAFile": "/root/other-ca.pem"}}.get(
    sys.argv[6] if len(sys.argv) > 6 else "", {"tls": True, "tlsCAFile": "/etc/mongodb/tls/ca.pem"})
client = MongoClient("127.0.0.1", 27017, serverSelectionTimeoutMS=5000, directConnection=True,
                     **kwargs, **tls)
try:
    if action == "insert":
        client[db]["probe"].insert_one({"x": 1})
        out = {"ok": True}
    elif action == "ping":
        out = {"ok": client.admin.command("ping")["ok"] == 1}
    elif action == "create_user":
        client.admin.command("createUser", "intruder", pwd="x", roles=["root"])
        out = {"ok": True}
    elif action == "grant_root":
        client.admin.command("grantRolesToUser", user, roles=["root"])
        out = {"ok": True}
    elif action == "drop_database":
        client.drop_database(db)
        out = {"ok": True}
    elif action == "count":
        out = {"ok": True, "count": client[db]["probe"].count_documents({})}
    elif action == "list":
        out = {"ok": True, "dbs": client.list_database_names()}
    elif action == "users":
        out = {"ok": True, "users": sorted(u["user"] for u in client[db].command("usersInfo")["users"])}
except OperationFailure as exc:
    out = {"ok": False, "code": exc.code}
except ServerSelectionTimeoutError as exc:
    out = {"ok": False, "unreachable": type(exc).__name__}
print(json.dumps(out))
"""


def probe(host, login: tuple[str, str, str], db: str, action: str, transport: str = "tls"):
    user, password, source = login
    host.run(f"cat > /tmp/probe.py <<'EOF'\n{PROBE}\nEOF")
    result = host.run(f"{PY} /tmp/probe.py '{user}' '{password}' '{source}' '{db}' '{action}' '{transport}'")
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def test_service_active_and_enabled(host):
    service = host.service("mongod")
    assert service.is_running
    assert service.is_enabled


def test_listening(host):
    assert host.socket("tcp://0.0.0.0:27017").is_listening


def test_options_file_from_variables(host):
    options = host.file("/etc/default/mongod")
    assert options.contains("--port 27017")
    assert options.contains("--auth")
    assert options.contains("--cache-size 256M")
    assert options.contains("--tls-cert-file /etc/mongodb/tls/server.pem")
    assert options.contains("--tls-key-file /etc/mongodb/tls/server.pem")
    assert options.contains("--tls-ca-file /etc/mongodb/tls/ca.pem")
    assert "secret" not in options.content_string


def test_tls_files_and_modes(host):
    key = host.file("/etc/mongodb/tls/server.pem")
    assert (key.user, key.group, key.mode) == ("mongodb", "mongodb", 0o400)
    assert key.contains("PRIVATE KEY")
    ca = host.file("/etc/mongodb/tls/ca.pem")
    assert (ca.user, ca.mode) == ("root", 0o644)
    assert not ca.contains("PRIVATE KEY")


ADMIN = ("admin", "admin-secret-1", "admin")
BACKUP = ("dbops_backup", "backup-secret-1", "admin")


def test_plain_connection_refused_tls_with_the_ca_works(host):
    refused = {"ok": False, "unreachable": "ServerSelectionTimeoutError"}
    assert probe(host, ADMIN, "admin", "ping", "plain") == refused
    assert probe(host, ADMIN, "admin", "ping", "other-ca") == refused
    assert probe(host, ADMIN, "admin", "ping") == {"ok": True}


def test_modules_worked_over_tls(host):
    seen = json.loads(host.file("/var/tmp/dbops-molecule-tls.json").content_string)
    # mongodb_ping without TLS and with the wrong CA: refused, with the module's own message
    assert seen["plain_error"] and seen["wrong_ca_error"], seen
    assert "admin-secret-1" not in json.dumps(seen)
    # mongodb_schema created the collection over TLS; mongodb_health_info read it over TLS
    assert "events" in seen["health_collections"]
    assert "appdb" in probe(host, ADMIN, "appdb", "list")["dbs"]


def test_backup_login_reads_everything_and_writes_only_the_scratch_database(host):
    assert probe(host, BACKUP, "appdb", "count")["ok"] is True
    assert probe(host, BACKUP, "admin", "list")["ok"] is True
    assert probe(host, BACKUP, "dbops_verify", "insert") == {"ok": True}
    assert probe(host, BACKUP, "dbops_verify", "count") == {"ok": True, "count": 1}
    assert probe(host, BACKUP, "dbops_verify", "drop_database") == {"ok": True}


@pytest.mark.parametrize(
    ("db", "action"),
    [
        ("appdb", "insert"),  # application data
        ("appdb", "drop_database"),
        ("dbops_verify_other", "insert"),  # any other database
        ("admin", "create_user"),  # user administration
        ("admin", "grant_root"),
    ],
)
def test_backup_login_refused(host, db, action):
    assert probe(host, BACKUP, db, action) == {"ok": False, "code": 13}


def test_unauthenticated_access_refused(host):
    assert probe(host, ("", "", "admin"), "appdb", "list") == {"ok": False, "code": 13}


def test_wrong_password_refused(host):
    assert probe(host, ("app", "wrong-password", "appdb"), "appdb", "insert") == {"ok": False, "code": 18}
    assert probe(host, ("admin", "wrong-password", "admin"), "admin", "list") == {"ok": False, "code": 18}


def test_app_user_reads_and_writes_its_database(host):
    assert probe(host, ("app", "app-secret-1", "appdb"), "appdb", "insert") == {"ok": True}
    assert probe(host, ("app", "app-secret-1", "appdb"), "appdb", "count")["count"] >= 1


def test_read_only_user_cannot_write(host):
    assert probe(host, ("reporter", "reporter-secret-1", "admin"), "appdb", "count")["ok"] is True
    assert probe(host, ("reporter", "reporter-secret-1", "admin"), "appdb", "insert") == {
        "ok": False,
        "code": 13,
    }


def test_users_on_the_server(host):
    users = probe(host, ("admin", "admin-secret-1", "admin"), "admin", "users")["users"]
    assert "admin" in users
    assert "reporter" in users
    assert "stale" not in users


def test_setting_change_restarted_the_server(host):
    before = host.file("/var/tmp/dbops-molecule/mongod-pid-0").content_string.strip()
    after = host.file("/var/tmp/dbops-molecule/mongod-pid-1").content_string.strip()
    assert before not in ("", "0")
    assert after not in ("", "0", before)
