# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MongoDB connection options and client handling shared by every mongodb_* module.

One argument spec (mirrored by the ``dbops.datastores.mongodb`` doc fragment), one pure
``client_kwargs()`` that turns module parameters into MongoClient arguments, and one
``connect()`` that proves the login with a ``ping`` and raises :class:`DbopsError` otherwise.
"""

from __future__ import annotations

import re
from typing import Any

from ansible.module_utils.basic import env_fallback

from ansible_collections.dbops.datastores.plugins.module_utils._errors import (
    DbopsError,
    MissingDriverError,
)

try:
    import pymongo
    import pymongo.errors

    PYMONGO_IMPORT_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - depends on the host
    pymongo = None
    PYMONGO_IMPORT_ERROR = str(exc)


def mongodb_argument_spec() -> dict[str, Any]:
    """Return a fresh argument spec with the connection options of every mongodb_* module."""
    return {
        "login_uri": {
            "type": "str",
            "no_log": True,
            "aliases": ["uri"],
            "fallback": (env_fallback, ["MONGODB_URI"]),
        },
        "login_host": {"type": "str", "default": "localhost", "aliases": ["host"]},
        "login_port": {"type": "int", "default": 27017, "aliases": ["port"]},
        "login_user": {"type": "str", "aliases": ["login"]},
        "login_password": {
            "type": "str",
            "no_log": True,
            "fallback": (env_fallback, ["MONGODB_PASSWORD"]),
        },
        "login_database": {"type": "str", "default": "admin", "aliases": ["auth_source"]},
        "replica_set": {"type": "str"},
        "direct_connection": {"type": "bool"},
        "tls": {"type": "bool", "default": False, "aliases": ["ssl"]},
        "tls_ca_file": {"type": "path"},
        "tls_certificate_key_file": {"type": "path"},
        "tls_allow_invalid_certificates": {"type": "bool", "default": False},
        "connect_timeout": {"type": "int", "default": 10},
    }


def client_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """Build MongoClient keyword arguments from module parameters.

    With ``login_uri`` the URI carries host, port and any options it names; explicit
    ``login_user``/``login_password`` and TLS options still apply on top of it.
    """
    timeout_ms = int(params.get("connect_timeout") or 10) * 1000
    kwargs: dict[str, Any] = {
        "serverSelectionTimeoutMS": timeout_ms,
        "connectTimeoutMS": timeout_ms,
        "appname": "dbops.datastores",
    }
    if params.get("login_uri"):
        kwargs["host"] = params["login_uri"]
    else:
        kwargs["host"] = params.get("login_host") or "localhost"
        kwargs["port"] = int(params.get("login_port") or 27017)
    if params.get("login_user"):
        kwargs["username"] = params["login_user"]
        kwargs["password"] = params.get("login_password")
        kwargs["authSource"] = params.get("login_database") or "admin"
    if params.get("replica_set"):
        kwargs["replicaSet"] = params["replica_set"]
    if params.get("direct_connection") is not None:
        kwargs["directConnection"] = params["direct_connection"]
    if params.get("tls"):
        kwargs["tls"] = True
        if params.get("tls_ca_file"):
            kwargs["tlsCAFile"] = params["tls_ca_file"]
        if params.get("tls_certificate_key_file"):
            kwargs["tlsCertificateKeyFile"] = params["tls_certificate_key_file"]
        if params.get("tls_allow_invalid_certificates"):
            kwargs["tlsAllowInvalidCertificates"] = True
    return kwargs


# Everything up to the last "@": a password may hold an unescaped "/", "?" or "@".
_URI_CREDENTIALS = re.compile(r"(mongodb(?:\+srv)?://).*@", re.S)


def secret_values(params: dict[str, Any]) -> list[str]:
    """The login password and the credentials of a login URI, longest first (for masking)."""
    found = [str(params["login_password"])] if params.get("login_password") else []
    uri = str(params.get("login_uri") or "")
    if "://" in uri and "@" in uri:
        userinfo = uri.split("://", 1)[1].rsplit("@", 1)[0]
        found += [userinfo, userinfo.partition(":")[2]]
    return sorted({v for v in found if v}, key=len, reverse=True)


def mask_secrets(text: str, params: dict[str, Any]) -> str:
    """``text`` with URI credentials and every known secret value replaced by ``***``."""
    text = _URI_CREDENTIALS.sub(r"\1***@", text)
    for value in secret_values(params):
        text = text.replace(value, "***")
    return text


def describe_target(kwargs: dict[str, Any]) -> str:
    """``user@host:port`` for messages; credentials inside a URI are masked."""
    if "port" in kwargs:
        where = f"{kwargs['host']}:{kwargs['port']}"
    else:
        where = _URI_CREDENTIALS.sub(r"\1***@", str(kwargs["host"]))
    user = kwargs.get("username")
    return f"{user}@{where}" if user else where


_HINTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"Authentication failed|auth(entication)? error|code 18\b", re.I),
     "check login_user, login_password and login_database (the auth source)"),
    (re.compile(r"requires authentication|Unauthorized|code 13\b", re.I),
     "the server requires authentication: set login_user and login_password"),
    (re.compile(r"Connection reset by peer|connection closed|EOF occurred", re.I),
     "the server closed the connection: it may require TLS (set tls: true) or refuse this client"),
    (re.compile(r"SSL|TLS|certificate", re.I),
     "check tls, tls_ca_file and tls_certificate_key_file against the server's TLS settings"),
    (re.compile(r"Connection refused|timed out|No servers found|nodename nor servname|Name or service",
                re.I),
     "is the server running and listening on that address?"),
]


def connect_error_message(error_text: str, target: str) -> str:
    """Turn a pymongo error into "connect to MongoDB at <target>: <cause> (<hint>)"."""
    cause = " ".join(str(error_text).split())
    # Server selection errors append a long topology description; keep the first part.
    cause = cause.split(", Timeout:", maxsplit=1)[0]
    cause = re.sub(r" \(configured timeouts: [^)]*\)", "", cause)
    hint = next((h for pattern, h in _HINTS if pattern.search(cause)), None)
    message = f"connect to MongoDB at {target}: {cause}"
    return f"{message} ({hint})" if hint else message


def error_text(exc: Exception) -> str:
    """The server's own message and code for a command error, without the raw reply document."""
    details = getattr(exc, "details", None) or {}
    message = details.get("errmsg") if isinstance(details, dict) else None
    code = getattr(exc, "code", None)
    text = message or str(exc).split(", full error:", maxsplit=1)[0]
    return f"{text} (code {code})" if code is not None else text


def require_driver() -> None:
    """Raise MissingDriverError when pymongo cannot be imported."""
    if pymongo is None:
        raise MissingDriverError("pymongo", PYMONGO_IMPORT_ERROR or "not installed")


def connect(params: dict[str, Any]) -> Any:
    """Open a MongoClient, prove the login with ``ping``, or raise DbopsError."""
    require_driver()
    kwargs = client_kwargs(params)
    target = describe_target(kwargs)
    try:
        client = pymongo.MongoClient(**kwargs)
    except (pymongo.errors.PyMongoError, ValueError, TypeError) as exc:
        raise DbopsError(mask_secrets(connect_error_message(str(exc), target), params)) from exc
    try:
        client.admin.command("ping")
    except pymongo.errors.PyMongoError as exc:
        client.close()
        text = error_text(exc)
        raise DbopsError(mask_secrets(connect_error_message(text, target), params)) from exc
    return client


def server_info(client: Any) -> dict[str, Any]:
    """Facts about the server and the login (read-only commands)."""
    build = client.admin.command("buildInfo")
    hello = client.admin.command("hello")
    status = client.admin.command("connectionStatus")
    auth = status.get("authInfo", {})
    users = auth.get("authenticatedUsers", [])
    roles = auth.get("authenticatedUserRoles", [])
    role_names = sorted(f"{r.get('role')}@{r.get('db')}" for r in roles)
    return {
        "server_version": build.get("version"),
        "server_version_info": list(build.get("versionArray", []))[:3],
        "is_primary": bool(hello.get("isWritablePrimary", hello.get("ismaster", False))),
        "replica_set": hello.get("setName"),
        "login_user": f"{users[0].get('user')}@{users[0].get('db')}" if users else None,
        "roles": role_names,
        "is_root": any(r.get("role") == "root" for r in roles),
    }
