"""Unit tests for the MongoDB connection helpers (no server)."""

from __future__ import annotations

import pytest

from ansible_collections.dbops.datastores.plugins.module_utils import _mongodb
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError, MissingDriverError


def params(**overrides):
    base = {name: spec.get("default") for name, spec in _mongodb.mongodb_argument_spec().items()}
    base.update(overrides)
    return base


def test_secrets_are_no_log():
    spec = _mongodb.mongodb_argument_spec()
    assert spec["login_password"]["no_log"] is True
    assert spec["login_uri"]["no_log"] is True  # a URI may carry credentials


def test_client_kwargs_defaults_are_unauthenticated_localhost():
    kwargs = _mongodb.client_kwargs(params())
    assert kwargs["host"] == "localhost"
    assert kwargs["port"] == 27017
    assert kwargs["serverSelectionTimeoutMS"] == 10000
    assert "username" not in kwargs
    assert "tls" not in kwargs


def test_client_kwargs_with_user_tls_and_replica_set():
    kwargs = _mongodb.client_kwargs(
        params(login_user="admin", login_password="pw", login_database="users", tls=True,
               tls_ca_file="/ca.pem", tls_certificate_key_file="/client.pem", replica_set="rs0",
               direct_connection=True, connect_timeout=3)
    )
    assert (kwargs["username"], kwargs["password"], kwargs["authSource"]) == ("admin", "pw", "users")
    assert kwargs["tls"] is True
    assert kwargs["tlsCAFile"] == "/ca.pem"
    assert kwargs["tlsCertificateKeyFile"] == "/client.pem"
    assert kwargs["replicaSet"] == "rs0"
    assert kwargs["directConnection"] is True
    assert kwargs["connectTimeoutMS"] == 3000


def test_tls_files_ignored_without_tls():
    kwargs = _mongodb.client_kwargs(params(tls_ca_file="/ca.pem"))
    assert "tlsCAFile" not in kwargs


def test_uri_replaces_host_and_port():
    kwargs = _mongodb.client_kwargs(params(login_uri="mongodb://u:p@db1:27019/?replicaSet=rs0"))
    assert kwargs["host"] == "mongodb://u:p@db1:27019/?replicaSet=rs0"
    assert "port" not in kwargs


def test_describe_target_masks_uri_credentials():
    kwargs = _mongodb.client_kwargs(params(login_uri="mongodb://u:secret@db1:27019/admin"))
    assert _mongodb.describe_target(kwargs) == "mongodb://***@db1:27019/admin"
    kwargs = _mongodb.client_kwargs(params(login_host="db1", login_user="mon", login_password="x"))
    assert _mongodb.describe_target(kwargs) == "mon@db1:27017"


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        ("Authentication failed. (code 18)", "check login_user, login_password and login_database"),
        ("command ping requires authentication (code 13)", "requires authentication"),
        ("SSL handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED]", "check tls, tls_ca_file"),
        ("db1:27017: [Errno 104] Connection reset by peer (configured timeouts: socketTimeoutMS: 3000.0ms)",
         "it may require TLS (set tls: true)"),
        ("localhost:1: [Errno 111] Connection refused, Timeout: 3.0s, Topology Description: <...>",
         "is the server running"),
    ],
)
def test_connect_error_message_hints(error, hint):
    message = _mongodb.connect_error_message(error, "mon@db1:27017")
    assert message.startswith("connect to MongoDB at mon@db1:27017: ")
    assert hint in message
    assert "Topology Description" not in message
    assert "configured timeouts" not in message


def test_error_text_prefers_server_errmsg():
    class Failure(Exception):
        code = 18

        @property
        def details(self):
            return {"errmsg": "Authentication failed.", "ok": 0}

    assert _mongodb.error_text(Failure("raw, full error: {...}")) == "Authentication failed. (code 18)"
    assert _mongodb.error_text(ValueError("plain")) == "plain"


def test_missing_driver_is_reported(monkeypatch):
    monkeypatch.setattr(_mongodb, "pymongo", None)
    with pytest.raises(MissingDriverError):
        _mongodb.connect(params())


@pytest.mark.parametrize("password", ["pa/ss", "p@ss/word", "a:b/c?d", "s3cr3t#x"])
def test_uri_credentials_are_masked_whatever_the_password_holds(password):
    """An unescaped ``/`` (or ``@``) in a URI password used to end the masking early."""
    uri = f"mongodb://app:{password}@db1:27019/admin?authSource=admin"
    target = _mongodb.describe_target(_mongodb.client_kwargs(params(login_uri=uri)))
    assert password not in target
    assert password.split("/")[-1] not in target
    assert target.endswith("db1:27019/admin?authSource=admin") or "***" in target


def test_connect_error_never_shows_the_uri_password():
    uri = "mongodb://app:pa/ss@db1:27019/admin"
    with pytest.raises(DbopsError) as err:
        _mongodb.connect(params(login_uri=uri, connect_timeout=1))
    assert "pa/ss" not in err.value.msg
    assert "ss@" not in err.value.msg
