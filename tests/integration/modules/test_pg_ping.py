"""pg_ping against a real PostgreSQL cluster, through ansible-playbook."""

from __future__ import annotations

import uuid

import pytest

from tests.harness.proc import free_port


@pytest.mark.pg_matrix
def test_superuser_login_reports_server_facts(ansible, pg_server):
    result = ansible.module("pg_ping", pg_server.params())
    assert result.get("failed") is not True, result
    assert result["changed"] is False
    assert result["is_available"] is True
    version_num = int(pg_server.query("SHOW server_version_num")[0][0])
    assert result["server_version_info"]["major"] == version_num // 10000
    assert result["server_version_info"]["full"] == version_num
    assert result["login_user"] == pg_server.user
    assert result["is_superuser"] is True
    assert result["in_recovery"] is False
    assert result["ssl"] is False


def test_monitor_role_memberships_are_reported(ansible, pg_server):
    role = f"mon_{uuid.uuid4().hex[:8]}"
    pg_server.query(f"CREATE ROLE {role} LOGIN PASSWORD 'monitor-pw' IN ROLE pg_monitor")
    try:
        result = ansible.module("pg_ping", pg_server.params(login_user=role, login_password="monitor-pw"))
        assert result["is_available"] is True, result
        assert result["is_superuser"] is False
        assert "pg_monitor" in result["member_of"]
        # pg_monitor includes pg_read_all_stats: indirect membership is listed too.
        assert "pg_read_all_stats" in result["member_of"]
    finally:
        pg_server.query(f"DROP ROLE {role}")


def test_wrong_password_fails_with_clear_message(ansible, pg_server):
    result = ansible.module("pg_ping", pg_server.params(login_password="not-the-password"))
    assert result["failed"] is True
    assert result["is_available"] is False
    assert "password authentication failed" in result["msg"]
    assert f"{pg_server.host}:{pg_server.port}" in result["msg"]
    assert "check login_user and login_password" in result["msg"]
    assert "not-the-password" not in result["msg"]
    assert "Traceback" not in result.get("module_stderr", "")


def test_unreachable_host_reports_unavailable_without_failing(ansible, pg_server):
    port = free_port()
    result = ansible.module(
        "pg_ping",
        pg_server.params(login_port=port, connect_timeout=3, fail_on_unavailable=False),
    )
    assert result.get("failed") is not True, result
    assert result["is_available"] is False
    assert "Connection refused" in result["error"]
    assert f"127.0.0.1:{port}" in result["error"]


@pytest.mark.pg_matrix
def test_tls_required_server_refuses_plain_connection(ansible, pg_tls_server):
    result = ansible.module("pg_ping", pg_tls_server.params(ssl_mode="disable"))
    assert result["failed"] is True
    assert "no pg_hba.conf entry" in result["msg"]
    assert "ssl_mode to require or verify-full" in result["msg"]


def test_tls_verify_full_without_ca_names_the_certificate_problem(ansible, pg_tls_server):
    result = ansible.module("pg_ping", pg_tls_server.params(ssl_mode="verify-full"))
    assert result["failed"] is True
    assert "root certificate file" in result["msg"]
    assert "check ca_cert, ssl_cert, ssl_key and ssl_mode" in result["msg"]


def test_tls_verify_full_with_ca_succeeds(ansible, pg_tls_server):
    result = ansible.module(
        "pg_ping",
        pg_tls_server.params(ssl_mode="verify-full", ca_cert=str(pg_tls_server.tls.ca_cert)),
    )
    assert result["is_available"] is True, result
    assert result["ssl"] is True


def test_connection_options_from_environment_and_module_defaults(ansible, pg_server):
    """PG* variables fill the options, and group/dbops.datastores.postgresql module_defaults work."""
    result = ansible.module(
        "pg_ping",
        {},
        task_env={"PGHOST": pg_server.host, "PGPORT": str(pg_server.port),
                  "PGUSER": pg_server.user, "PGPASSWORD": pg_server.password},
    )
    assert result["is_available"] is True, result
    result = ansible.module(
        "pg_ping", {}, module_defaults={"group/dbops.datastores.postgresql": pg_server.params()}
    )
    assert result["is_available"] is True, result
    assert result["login_user"] == pg_server.user


def test_password_is_not_logged(ansible, pg_server):
    result = ansible.module("pg_ping", pg_server.params())
    assert pg_server.password not in str(result)
