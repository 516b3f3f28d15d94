"""Outcomes of the mongodb role (test-only server flavour) on the converged container."""

import json

PY = "/opt/dbops/mongodb-python/bin/python"

# Runs inside the container: connect, run one command, print a JSON outcome.
PROBE = r"""
import json, sys
from pymongo import MongoClient
from pymongo.errors import OperationFailure
user, password, source, db, action = sys.argv[1:6]
kwargs = {"username": user, "password": password, "authSource": source} if user else {}
client = MongoClient("127.0.0.1", 27017, serverSelectionTimeoutMS=5000, directConnection=True, **kwargs)
try:
    if action == "insert":
        client[db]["probe"].insert_one({"x": 1})
        out = {"ok": True}
    elif action == "count":
        out = {"ok": True, "count": client[db]["probe"].count_documents({})}
    elif action == "list":
        out = {"ok": True, "dbs": client.list_database_names()}
    elif action == "users":
        out = {"ok": True, "users": sorted(u["user"] for u in client[db].command("usersInfo")["users"])}
except OperationFailure as exc:
    out = {"ok": False, "code": exc.code}
print(json.dumps(out))
"""


def probe(host, login: tuple[str, str, str], db: str, action: str):
    user, password, source = login
    host.run(f"cat > /tmp/probe.py <<'EOF'\n{PROBE}\nEOF")
    result = host.run(f"{PY} /tmp/probe.py '{user}' '{password}' '{source}' '{db}' '{action}'")
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
    assert "secret" not in options.content_string


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
