"""Unit tests for the PostgreSQL connection helpers (no server)."""

from __future__ import annotations

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _postgres
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError


def params(**overrides):
    base = {name: spec.get("default") for name, spec in _postgres.pg_argument_spec().items()}
    base.update(overrides)
    return base


def test_argument_spec_is_a_fresh_copy_each_time():
    first = _postgres.pg_argument_spec()
    first["login_host"]["default"] = "mutated"
    assert "default" not in _postgres.pg_argument_spec()["login_host"]


def test_secrets_are_no_log_and_env_fallbacks_are_libpq_names():
    spec = _postgres.pg_argument_spec()
    assert spec["login_password"]["no_log"] is True
    fallbacks = {name: opt["fallback"][1][0] for name, opt in spec.items() if "fallback" in opt}
    assert fallbacks["login_host"] == "PGHOST"
    assert fallbacks["login_port"] == "PGPORT"
    assert fallbacks["login_user"] == "PGUSER"
    assert fallbacks["login_password"] == "PGPASSWORD"
    assert fallbacks["login_db"] == "PGDATABASE"


def test_conn_kwargs_defaults():
    kwargs = _postgres.conn_kwargs(params())
    assert kwargs == {
        "user": "postgres",
        "port": 5432,
        "sslmode": "prefer",
        "connect_timeout": 10,
        "application_name": "dbops.datastores",
        "dbname": "postgres",
    }


def test_conn_kwargs_socket_wins_over_host_and_database_override():
    kwargs = _postgres.conn_kwargs(
        params(login_host="db1", login_unix_socket="/run/postgresql", login_db="app"), database="other"
    )
    assert kwargs["host"] == "/run/postgresql"
    assert kwargs["dbname"] == "other"


def test_conn_kwargs_tls_and_password():
    kwargs = _postgres.conn_kwargs(
        params(login_host="db1", login_password="s3cret", ssl_mode="verify-full", ca_cert="/ca.pem",
               ssl_cert="/c.pem", ssl_key="/k.pem")
    )
    assert kwargs["password"] == "s3cret"
    assert kwargs["sslmode"] == "verify-full"
    assert (kwargs["sslrootcert"], kwargs["sslcert"], kwargs["sslkey"]) == ("/ca.pem", "/c.pem", "/k.pem")


def test_empty_password_is_passed_through():
    assert _postgres.conn_kwargs(params(login_password=""))["password"] == ""


def test_describe_target_never_shows_password():
    kwargs = _postgres.conn_kwargs(params(login_host="db1", login_password="s3cret", login_user="app"))
    target = _postgres.describe_target(kwargs)
    assert target == "app@db1:5432/postgres"
    assert "s3cret" not in target


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        ('FATAL:  password authentication failed for user "app"', "check login_user and login_password"),
        ("fe_sendauth: no password supplied", "set login_password"),
        ('FATAL:  no pg_hba.conf entry for host "127.0.0.1", user "app", database "x", no encryption',
         "ssl_mode to require or verify-full"),
        ("server does not support SSL, but SSL was required", "the server has TLS disabled"),
        ('connection to server at "127.0.0.1", port 1 failed: Connection refused\n'
         "\tIs the server running on that host and accepting TCP/IP connections?",
         "is the server running"),
        ('FATAL:  database "nope" does not exist', "create the database first"),
        ("timeout expired", "unreachable"),
    ],
)
def test_connect_error_message_hints(error, hint):
    message = _postgres.connect_error_message(error, "app@db1:5432/x")
    assert message.startswith("connect to PostgreSQL at app@db1:5432/x: ")
    assert hint in message
    assert "\n" not in message


def test_unknown_error_has_no_hint():
    message = _postgres.connect_error_message("something odd", "t")
    assert message == "connect to PostgreSQL at t: something odd"


@pytest.mark.parametrize(
    ("num", "expected"),
    [
        (150018, {"major": 15, "minor": 18, "full": 150018}),
        (100001, {"major": 10, "minor": 1, "full": 100001}),
        (90624, {"major": 9, "minor": 6, "patch": 24, "full": 90624}),
    ],
)
def test_server_version_dict(num, expected):
    assert _postgres.server_version_dict(num) == expected


def test_connect_wraps_driver_errors(monkeypatch):
    class FakeError(Exception):
        pass

    class FakeDriver:
        Error = FakeError

        @staticmethod
        def connect(**_kwargs):
            raise FakeError('FATAL:  password authentication failed for user "x"')

    monkeypatch.setattr(_postgres, "psycopg2", FakeDriver)
    with pytest.raises(DbopsError, match=r"password authentication failed .*check login_user"):
        _postgres.connect(params(login_host="h", login_user="x"))


def test_missing_driver_is_reported(monkeypatch):
    monkeypatch.setattr(_postgres, "psycopg2", None)
    monkeypatch.setattr(_postgres, "PSYCOPG2_IMPORT_ERROR", "No module named 'psycopg2'")
    with pytest.raises(DbopsError) as info:
        _postgres.connect(params())
    assert info.value.library == "psycopg2"


@pytest.mark.parametrize("version_num", [130000, 130023, 150018, 180004])
def test_supported_server_versions_pass(version_num):
    _postgres.check_server_version(version_num, "u@h:5432/db")


@pytest.mark.parametrize(("version_num", "shown"), [(120022, "12.22"), (110005, "11.5"), (90624, "9.6")])
def test_servers_before_13_are_refused(version_num, shown):
    expected = (rf"connect to PostgreSQL at u@h:5432/db: server version {shown} is not supported "
                r"\(dbops.datastores supports PostgreSQL 13 and newer")
    with pytest.raises(DbopsError, match=expected):
        _postgres.check_server_version(version_num, "u@h:5432/db")


def test_tls_hint_matches_the_wording_of_13_and_of_14_and_later():
    for cause in ('no pg_hba.conf entry for host "127.0.0.1", user "u", database "d", SSL off',
                  'no pg_hba.conf entry for host "127.0.0.1", user "u", database "d", no encryption'):
        assert "ssl_mode to require" in _postgres.connect_error_message(cause, "t")
