"""mongodb_ping against the MongoDB-wire test server (or a real mongod), through ansible-playbook."""

from __future__ import annotations

from tests.harness.proc import free_port


def test_reports_server_facts(ansible, any_mongo):
    result = ansible.module("mongodb_ping", any_mongo.params())
    assert result.get("failed") is not True, result
    assert result["changed"] is False
    assert result["is_available"] is True
    with any_mongo.client() as client:
        version = client.admin.command("buildInfo")["version"]
    assert result["server_version"] == version
    assert result["is_primary"] is True
    if any_mongo.auth:
        assert result["login_user"] == f"{any_mongo.user}@admin"
        assert "root@admin" in result["roles"]
        assert result["is_root"] is True
    else:
        assert result["login_user"] is None
        assert result["is_root"] is False


def test_monitor_user_roles_are_reported(ansible, mongo_auth_server):
    with mongo_auth_server.client() as client:
        client.admin.command("createUser", "ping_monitor", pwd="monitor-pw",
                             roles=["clusterMonitor", {"role": "read", "db": "app"}])
    try:
        result = ansible.module(
            "mongodb_ping",
            mongo_auth_server.params(login_user="ping_monitor", login_password="monitor-pw"),
        )
        assert result["is_available"] is True, result
        assert result["roles"] == ["clusterMonitor@admin", "read@app"]
        assert result["is_root"] is False
    finally:
        with mongo_auth_server.client() as client:
            client.admin.command("dropUser", "ping_monitor")


def test_wrong_password_fails_with_clear_message(ansible, mongo_auth_server):
    result = ansible.module("mongodb_ping", mongo_auth_server.params(login_password="wrong-pw"))
    assert result["failed"] is True
    assert result["is_available"] is False
    assert "authentication failed" in result["msg"].lower()
    assert f"root@{mongo_auth_server.host}:{mongo_auth_server.port}" in result["msg"]
    assert "check login_user, login_password and login_database" in result["msg"]
    assert "wrong-pw" not in result["msg"]


def test_unauthenticated_client_on_auth_server_is_refused(ansible, mongo_auth_server):
    params = {"login_host": mongo_auth_server.host, "login_port": mongo_auth_server.port}
    result = ansible.module("mongodb_ping", params)
    assert result["failed"] is True
    assert "requires authentication" in result["msg"] or "Unauthorized" in result["msg"], result


def test_unreachable_host_reports_unavailable_without_failing(ansible):
    port = free_port()
    result = ansible.module(
        "mongodb_ping",
        {"login_host": "127.0.0.1", "login_port": port, "connect_timeout": 2,
         "fail_on_unavailable": False},
    )
    assert result.get("failed") is not True, result
    assert result["is_available"] is False
    assert f"127.0.0.1:{port}" in result["error"]
    assert "is the server running" in result["error"]


def test_tls_server_refuses_plain_connection(ansible, mongo_tls_server):
    result = ansible.module("mongodb_ping", mongo_tls_server.params(tls=False, connect_timeout=3))
    assert result["failed"] is True
    assert f"{mongo_tls_server.host}:{mongo_tls_server.port}" in result["msg"]
    assert "it may require TLS (set tls: true)" in result["msg"]


def test_tls_without_trusted_ca_names_the_certificate_problem(ansible, mongo_tls_server):
    result = ansible.module("mongodb_ping", mongo_tls_server.params(tls_ca_file=None, connect_timeout=3))
    assert result["failed"] is True
    assert "CERTIFICATE_VERIFY_FAILED" in result["msg"]
    assert "check tls, tls_ca_file" in result["msg"]
    assert "configured timeouts" not in result["msg"]


def test_tls_with_ca_succeeds(ansible, mongo_tls_server):
    result = ansible.module("mongodb_ping", mongo_tls_server.params())
    assert result["is_available"] is True, result


def test_uri_option_and_module_defaults(ansible, mongo_server):
    uri = f"mongodb://{mongo_server.host}:{mongo_server.port}/"
    result = ansible.module("mongodb_ping", {"login_uri": uri})
    assert result["is_available"] is True, result
    result = ansible.module(
        "mongodb_ping", {}, module_defaults={"group/dbops.datastores.mongodb": mongo_server.params()}
    )
    assert result["is_available"] is True, result
