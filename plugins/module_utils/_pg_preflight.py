# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pre-flight of a PostgreSQL migration: the database's size and the sessions that would block DDL.

A session whose transaction has been open longer than ``session_max_age`` (running a long query,
or idle in transaction) holds locks that make ``ALTER TABLE`` wait, and every query behind that
``ALTER TABLE`` wait too. :func:`preflight` lists them, waits up to ``session_wait`` seconds for
them to finish, then fails (``on_sessions=fail``) or reports them and goes on (``continue``).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

ON_SESSIONS = ("fail", "continue")

SESSIONS_SQL = (
    "SELECT pid, usename, application_name, coalesce(host(client_addr), 'local socket'), state,"
    " extract(epoch FROM now() - xact_start)::float8, left(regexp_replace(query, '\\s+', ' ', 'g'), 200)"
    " FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    " AND xact_start IS NOT NULL AND now() - xact_start > make_interval(secs => %s)"
    " ORDER BY xact_start"
)


def describe(session: dict[str, Any]) -> str:
    return (f"pid {session['pid']} (user {session['user']}, application {session['application_name']!r},"
            f" client {session['client']}, {session['state']} for {session['transaction_age_s']:.0f}s:"
            f" {session['query']})")


def blocking_sessions(conn: Any, max_age_s: float) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(SESSIONS_SQL, (max_age_s,))
        rows = cur.fetchall()
    keys = ("pid", "user", "application_name", "client", "state", "transaction_age_s", "query")
    return [dict(zip(keys, row)) for row in rows]


def preflight(conn: Any, *, session_max_age: float, session_wait: float, on_sessions: str,
              sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Database size and blocking sessions; ``DbopsError`` when sessions remain and the policy is fail."""
    if session_max_age < 0 or session_wait < 0:
        raise DbopsError("check pre-flight options: session_max_age and session_wait cannot be negative")
    if on_sessions not in ON_SESSIONS:
        raise DbopsError(f"check pre-flight options: on_sessions={on_sessions!r} is not one of"
                         " fail, continue")
    with conn.cursor() as cur:
        cur.execute("SELECT current_database(), pg_database_size(current_database())")
        database, size = cur.fetchone()
    started = time.monotonic()
    sessions = blocking_sessions(conn, session_max_age)
    while sessions and time.monotonic() - started < session_wait:
        sleep(min(1.0, max(0.0, session_wait - (time.monotonic() - started))))
        sessions = blocking_sessions(conn, session_max_age)
    result = {"changed": False, "database": database, "size_bytes": int(size), "sessions": sessions,
              "waited_s": round(time.monotonic() - started, 1)}
    if sessions and on_sessions == "fail":
        raise DbopsError(
            f"pre-flight {database}: {len(sessions)} session(s) with a transaction open longer than"
            f" {session_max_age:g}s would block the migration's DDL (waited {result['waited_s']:g}s): "
            + "; ".join(describe(s) for s in sessions),
            **result,
        )
    return result
