# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL connection options and connection handling shared by every pg_* module.

One argument spec (mirrored by the ``dbops.datastores.postgres`` doc fragment), one pure
``conn_kwargs()`` that turns module parameters into psycopg2 keyword arguments, and one
``connect()`` that raises :class:`DbopsError` with a message an operator can act on.
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
    import psycopg2
    import psycopg2.extensions

    PSYCOPG2_IMPORT_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - depends on the host
    psycopg2 = None
    PSYCOPG2_IMPORT_ERROR = str(exc)

SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
# The oldest PostgreSQL major the modules are tested on and accept (docs/postgresql-versions.md).
MIN_SERVER_MAJOR = 13


def pg_argument_spec() -> dict[str, Any]:
    """Return a fresh argument spec with the connection options of every pg_* module."""
    return {
        "login_host": {"type": "str", "aliases": ["host"], "fallback": (env_fallback, ["PGHOST"])},
        "login_port": {
            "type": "int",
            "default": 5432,
            "aliases": ["port"],
            "fallback": (env_fallback, ["PGPORT"]),
        },
        "login_user": {
            "type": "str",
            "default": "postgres",
            "aliases": ["login"],
            "fallback": (env_fallback, ["PGUSER"]),
        },
        "login_password": {
            "type": "str",
            "no_log": True,
            "fallback": (env_fallback, ["PGPASSWORD"]),
        },
        "login_unix_socket": {"type": "str", "aliases": ["unix_socket"]},
        "login_db": {
            "type": "str",
            "aliases": ["login_database"],
            "fallback": (env_fallback, ["PGDATABASE"]),
        },
        "ssl_mode": {
            "type": "str",
            "default": "prefer",
            "choices": SSL_MODES,
            "fallback": (env_fallback, ["PGSSLMODE"]),
        },
        "ca_cert": {
            "type": "path",
            "aliases": ["ssl_rootcert"],
            "fallback": (env_fallback, ["PGSSLROOTCERT"]),
        },
        "ssl_cert": {"type": "path", "fallback": (env_fallback, ["PGSSLCERT"])},
        "ssl_key": {"type": "path", "no_log": False, "fallback": (env_fallback, ["PGSSLKEY"])},
        "connect_timeout": {
            "type": "int",
            "default": 10,
            "fallback": (env_fallback, ["PGCONNECT_TIMEOUT"]),
        },
    }


def conn_kwargs(params: dict[str, Any], database: str | None = None) -> dict[str, Any]:
    """Build psycopg2.connect() keyword arguments from module parameters.

    ``database`` overrides ``login_db`` (modules that work on a named database pass it).
    A unix socket directory wins over ``login_host``; with neither, libpq's default applies.
    The database defaults to ``postgres`` (not libpq's "same as the user"), which every cluster has.
    """
    kwargs: dict[str, Any] = {
        "user": params.get("login_user") or "postgres",
        "port": params.get("login_port") or 5432,
        "sslmode": params.get("ssl_mode") or "prefer",
        "connect_timeout": params.get("connect_timeout") or 10,
        "application_name": "dbops.datastores",
    }
    host = params.get("login_unix_socket") or params.get("login_host")
    if host:
        kwargs["host"] = host
    if params.get("login_password") is not None:
        kwargs["password"] = params["login_password"]
    kwargs["dbname"] = database or params.get("login_db") or "postgres"
    for option, key in (("ca_cert", "sslrootcert"), ("ssl_cert", "sslcert"), ("ssl_key", "sslkey")):
        if params.get(option):
            kwargs[key] = params[option]
    return kwargs


def describe_target(kwargs: dict[str, Any]) -> str:
    """Human-readable ``user@host:port/db`` for error messages (never includes the password)."""
    host = kwargs.get("host") or "(default socket)"
    db = kwargs.get("dbname") or kwargs.get("user")
    return f"{kwargs.get('user')}@{host}:{kwargs.get('port')}/{db}"


# Patterns as text: compiled (and cached by re) only when a connection fails, not on every import.
_HINTS: list[tuple[str, str]] = [
    (
        r"password authentication failed|authentication failed for user",
        "check login_user and login_password",
    ),
    (
        r"no password supplied|fe_sendauth",
        "the server requires a password: set login_password (or PGPASSWORD)",
    ),
    (
        # "no encryption" since PostgreSQL 14, "SSL off" in 13.
        r"no pg_hba\.conf entry .* (no encryption|SSL off)",
        "the server accepts this client only over TLS: set ssl_mode to require or verify-full",
    ),
    (
        r"server does not support SSL",
        "the server has TLS disabled: set ssl_mode to prefer or disable, or enable ssl on the server",
    ),
    (
        r"no pg_hba\.conf entry",
        "add a pg_hba.conf entry for this client, user and database",
    ),
    (
        r"Connection refused|No such file or directory",
        "is the server running and listening on that address?",
    ),
    (
        r"timeout expired|could not translate host name|Name or service not known",
        "the host is unreachable or does not resolve",
    ),
    (
        r"database \".*\" does not exist",
        "create the database first or set login_db",
    ),
    (
        r"certificate|SSL error|sslmode value",
        "check ca_cert, ssl_cert, ssl_key and ssl_mode",
    ),
]


def connect_error_message(error_text: str, target: str) -> str:
    """Turn a libpq error into "connect to PostgreSQL at <target>: <cause> (<hint>)"."""
    lines = [line.strip() for line in str(error_text).strip().splitlines() if line.strip()]
    cause = "; ".join(lines) or "unknown error"
    hint = next((h for pattern, h in _HINTS if re.search(pattern, cause, re.I)), None)
    message = f"connect to PostgreSQL at {target}: {cause}"
    return f"{message} ({hint})" if hint else message


def require_driver() -> None:
    """Raise MissingDriverError when psycopg2 cannot be imported."""
    if psycopg2 is None:
        raise MissingDriverError("psycopg2", PSYCOPG2_IMPORT_ERROR or "not installed")


def connect(params: dict[str, Any], database: str | None = None, autocommit: bool = False) -> Any:
    """Open a psycopg2 connection from module parameters or raise DbopsError."""
    conn = connect_with(conn_kwargs(params, database))
    conn.autocommit = autocommit
    return conn


def connect_with(kwargs: dict[str, Any]) -> Any:
    """The one place a PostgreSQL connection is opened: psycopg2.connect(**kwargs), libpq errors
    turned into DbopsError with a hint, and servers older than MIN_SERVER_MAJOR refused."""
    require_driver()
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.Error as exc:
        raise DbopsError(connect_error_message(str(exc), describe_target(kwargs))) from exc
    try:
        check_server_version(conn.server_version, describe_target(kwargs))
    except DbopsError:
        conn.close()
        raise
    return conn


def check_server_version(version_num: int, target: str) -> None:
    """Refuse a server older than MIN_SERVER_MAJOR (``version_num`` is server_version_num)."""
    major = version_num // 10000
    if major < MIN_SERVER_MAJOR:
        shown = f"{major}.{version_num % 10000}" if major >= 10 else f"{major}.{(version_num // 100) % 100}"
        raise DbopsError(
            f"connect to PostgreSQL at {target}: server version {shown} is not supported "
            f"(dbops.datastores supports PostgreSQL {MIN_SERVER_MAJOR} and newer; upgrade the server)",
            server_version_num=version_num,
        )


def server_version_dict(version_num: int) -> dict[str, int]:
    """Split server_version_num (e.g. 150018) into major/minor (10+ numbering) ."""
    if version_num >= 100000:
        return {"major": version_num // 10000, "minor": version_num % 10000, "full": version_num}
    return {
        "major": version_num // 10000,
        "minor": (version_num // 100) % 100,
        "patch": version_num % 100,
        "full": version_num,
    }


def server_info(conn: Any) -> dict[str, Any]:
    """Facts about the server and the login of an open connection (read-only queries)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT current_setting('server_version'), current_setting('server_version_num')::int,"
            " current_user, session_user, current_database(), pg_is_in_recovery(),"
            " r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication,"
            " COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false),"
            " ARRAY(SELECT b.rolname FROM pg_roles b WHERE pg_has_role(current_user, b.oid, 'MEMBER')"
            "       AND b.rolname <> current_user ORDER BY b.rolname)"
            " FROM pg_roles r WHERE r.rolname = current_user"
        )
        row = cur.fetchone()
    if row is None:  # pragma: no cover - current_user always exists in pg_roles
        raise DbopsError("read server facts: current_user is not in pg_roles")
    return {
        "server_version": row[0],
        "server_version_info": server_version_dict(row[1]),
        "login_user": row[2],
        "session_user": row[3],
        "database": row[4],
        "in_recovery": row[5],
        "is_superuser": row[6],
        "can_create_role": row[7],
        "can_create_db": row[8],
        "can_replicate": row[9],
        "ssl": row[10],
        "member_of": list(row[11]),
    }
