"""The db_monitoring role's PostgreSQL grants (community.postgresql tasks, as the role runs them)
on every server major under test: the monitor login then reads health facts as a pg_monitor member."""

from __future__ import annotations

import json
import uuid

import pytest

pytestmark = pytest.mark.pg_matrix


def run_role(ansible, pg_server, db: str, user: str, password: str):
    play = {
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {
            # The role connects over the unix socket as the become user; here root (su needs no
            # password as root) with the harness superuser's password in PGPASSWORD.
            "ansible_become_method": "ansible.builtin.su",
            "db_monitoring_postgresql_become_user": "root",
            "db_monitoring_postgresql_unix_socket": str(pg_server.socket_dir),
            "db_monitoring_postgresql_port": pg_server.port,
            "db_monitoring_postgresql_user": user,
            "db_monitoring_postgresql_password": password,
            "db_monitoring_postgresql_databases": [{"name": db}],
        },
        "tasks": [{
            "name": "db_monitoring grants",
            "ansible.builtin.include_role": {"name": "dbops.datastores.db_monitoring",
                                             "tasks_from": "postgresql"},
        }],
    }
    path = ansible.workdir / f"monitoring_{uuid.uuid4().hex[:6]}.yml"
    path.write_text(json.dumps([play]))
    return ansible.playbook(path, env={"PGPASSWORD": pg_server.password, "PGUSER": pg_server.user})


def test_grants_work_and_are_idempotent_on_this_major(ansible, pg_server, pg_db):
    pg_server.query("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1)", dbname=pg_db)
    user, password = f"mon_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    try:
        first = run_role(ansible, pg_server, pg_db, user, password)
        assert first.rc == 0, first.stdout[-3000:] + first.stderr[-2000:]
        assert first.stats["localhost"]["changed"] >= 4
        second = run_role(ansible, pg_server, pg_db, user, password)
        assert second.rc == 0, second.stdout[-3000:]
        assert second.stats["localhost"]["changed"] == 0, second.task_results()

        rolsuper, member = pg_server.query(
            "SELECT rolsuper, pg_has_role(oid, 'pg_monitor', 'MEMBER') FROM pg_roles WHERE rolname = %s",
            [user])[0]
        assert (rolsuper, member) == (False, True)
        # The monitor reads statistics, not application data: no SELECT on tables, now or later.
        pg_server.query("CREATE TABLE later (id int)", dbname=pg_db)
        for table in ("public.orders", "public.later"):
            assert pg_server.query("SELECT has_table_privilege(%s, %s, 'SELECT')", [user, table],
                                   dbname=pg_db)[0][0] is False, table

        login = pg_server.params(login_user=user, login_password=password)
        health = ansible.module("pg_health_info", {**login, "databases": [pg_db]}, check=True)
        assert health.get("failed") is not True, health
        assert health["server"]["version_num"] // 10000 == pg_server.major
        orders = next(t for t in health["tables"] if t["name"] == "orders")
        assert orders["total_bytes"] > 0
        assert health["connections"]["current"] >= 1
        statuses = {c["status"] for c in health["checks"]}
        assert statuses <= {"ok", "warning", "critical", "skipped"}, health["checks"]
    finally:
        pg_server.query(f"DROP OWNED BY {user}", dbname=pg_db)
        pg_server.query(f"DROP OWNED BY {user}; DROP ROLE IF EXISTS {user}")
