"""The monitor users read metrics (PostgreSQL: and the migration history), nothing else (tried for real)."""

import json

import pytest

PSQL = "psql -X -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 5432 -d appdb"
PY = "/opt/dbops/mongodb-python/bin/python"


def pg(host, sql: str, user: str = "monitor", password: str = "monitor-secret-1"):
    return host.run(f"PGPASSWORD='{password}' {PSQL} -U {user} -c \"{sql}\"")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # the migration history table (health and status read the schema version from it)
        ("SELECT version FROM public.dbops_schema_history", "001"),
        # table statistics and sizes need no privilege on the table itself
        ("SELECT n_live_tup > 0 FROM pg_stat_user_tables WHERE relname = 'orders'", "t"),
        ("SELECT pg_table_size('public.orders') > 0", "t"),
        # pg_monitor: pg_read_all_settings and pg_read_all_stats
        ("SELECT setting FROM pg_settings WHERE name = 'data_directory'", "/var/lib/postgresql/15/main"),
        ("SELECT count(*) > 0 FROM pg_stat_database WHERE datname = 'appdb'", "t"),
    ],
)
def test_pg_monitor_reads(host, sql, expected):
    result = pg(host, sql)
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("INSERT INTO public.orders VALUES (2, 1)", "permission denied for table orders"),
        ("UPDATE public.invoices SET id = 8", "permission denied for table invoices"),
        ("DELETE FROM reporting.daily", "permission denied for table daily"),
        ("CREATE TABLE public.mine (id int)", "permission denied for schema public"),
        ("CREATE SCHEMA mine", "permission denied for database appdb"),
        ("SELECT * FROM private.salaries", "permission denied for schema private"),
        # application data: not readable, in listed schemas, now or later (no SELECT, no default privileges)
        ("SELECT total FROM public.orders", "permission denied for table orders"),
        ("SELECT n FROM reporting.daily", "permission denied for table daily"),
        ("SELECT id FROM public.invoices", "permission denied for table invoices"),
        ("SELECT last_value FROM public.orders_id_seq", "permission denied for sequence orders_id_seq"),
        ("CREATE DATABASE mine", "permission denied to create database"),
    ],
)
def test_pg_monitor_cannot_write_create_or_read_ungranted(host, sql, error):
    result = pg(host, sql)
    assert result.rc != 0
    assert error in result.stderr


def test_pg_monitor_wrong_password_refused(host):
    result = pg(host, "SELECT 1", password="wrong")
    assert result.rc != 0
    assert "password authentication failed" in result.stderr


def test_pg_monitor_role_attributes(host):
    result = host.run(
        'su postgres -c "psql -At -c \\"SELECT rolsuper, rolcreatedb, rolcreaterole, rolconnlimit, '
        "pg_has_role('monitor', 'pg_monitor', 'USAGE') FROM pg_roles WHERE rolname = 'monitor'\\\"\""
    )
    assert result.stdout.strip() == "f|f|f|5|t"


MONGO_PROBE = r"""
import json, sys
from pymongo import MongoClient
from pymongo.errors import OperationFailure
password, action = sys.argv[1:3]
c = MongoClient("127.0.0.1", 27017, username="monitor", password=password, authSource="admin",
                serverSelectionTimeoutMS=5000)
try:
    if action == "serverStatus":
        out = {"ok": c.admin.command("serverStatus")["ok"] == 1}
    elif action == "read":
        out = {"ok": True, "n": c.appdb.orders.count_documents({})}
    elif action == "write":
        c.appdb.orders.insert_one({"total": 1})
        out = {"ok": True}
    elif action == "create":
        c.appdb.create_collection("mine")
        out = {"ok": True}
    elif action == "read_other":
        out = {"ok": True, "n": c.otherdb.secrets.count_documents({})}
    elif action == "create_user":
        c.admin.command("createUser", "intruder", pwd="x", roles=["root"])
        out = {"ok": True}
except OperationFailure as exc:
    out = {"ok": False, "code": exc.code}
print(json.dumps(out))
"""


def mongo(host, action: str, password: str = "monitor-secret-2"):
    host.run(f"cat > /tmp/mongo_probe.py <<'EOF'\n{MONGO_PROBE}\nEOF")
    result = host.run(f"{PY} /tmp/mongo_probe.py '{password}' {action}")
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def test_mongo_monitor_reads_metrics_and_granted_data(host):
    assert mongo(host, "serverStatus") == {"ok": True}
    assert mongo(host, "read") == {"ok": True, "n": 1}


@pytest.mark.parametrize("action", ["write", "create", "read_other", "create_user"])
def test_mongo_monitor_cannot_write_create_or_read_ungranted(host, action):
    assert mongo(host, action) == {"ok": False, "code": 13}


def test_mongo_monitor_wrong_password_refused(host):
    assert mongo(host, "read", password="wrong") == {"ok": False, "code": 18}
