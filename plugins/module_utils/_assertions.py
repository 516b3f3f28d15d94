# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Post-migration assertions: named checks that must hold once the migrations have run.

PostgreSQL: ``{name, sql}``; the query must return exactly one row with one column that is
``true`` (``SELECT count(*) = 43 FROM information_schema.tables WHERE ...``). Each runs in a
read-only transaction that is rolled back. MongoDB: ``{name, collection, filter, count}``; the
number of documents of ``collection`` matching ``filter`` must equal ``count``.

Every assertion runs (one failure does not hide the next); :func:`raise_failures` fails with the
name of each failed assertion and what it found. No driver is imported here: the callers pass a
psycopg2 connection or a pymongo database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError


def validate(assertions: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """Every assertion has a unique, non-empty name and the keys it needs (``DbopsError`` otherwise)."""
    problems, seen = [], set()
    for number, item in enumerate(assertions, 1):
        name = item.get("name")
        if not name:
            problems.append(f"assertion {number} has no name")
        elif name in seen:
            problems.append(f"two assertions are named {name!r}")
        seen.add(name)
        missing = [k for k in keys if item.get(k) in (None, "")]
        if missing:
            problems.append(f"assertion {name or number} has no {', '.join(missing)}")
    if problems:
        raise DbopsError("check assertions: " + "; ".join(problems), problems=problems)


def judge_rows(rows: Sequence[Sequence[Any]]) -> str | None:
    """Why a PostgreSQL assertion's result is not a single ``true`` (``None`` when it is)."""
    if len(rows) != 1 or len(rows[0]) != 1:
        shape = f"{len(rows)} row(s)" + (f" of {len(rows[0])} column(s)" if rows else "")
        return f"expected one row with one boolean, got {shape}"
    value = rows[0][0]
    if value is True:
        return None
    return f"returned {value!r}, expected true"


def judge_count(actual: int, expected: int) -> str | None:
    return None if actual == expected else f"counted {actual} document(s), expected {expected}"


def run_all(assertions: Sequence[dict[str, Any]], check: Callable[[dict[str, Any]], str | None]
            ) -> list[dict[str, Any]]:
    """Run every assertion; ``check`` returns the failure (or ``None``) and may raise ``DbopsError``."""
    results = []
    for item in assertions:
        try:
            problem = check(item)
        except DbopsError as exc:
            problem = exc.msg
        entry: dict[str, Any] = {"name": item["name"], "ok": problem is None}
        if problem is not None:
            entry["error"] = problem
        results.append(entry)
    return results


def raise_failures(results: Sequence[dict[str, Any]], target: str) -> None:
    failed = [r for r in results if not r["ok"]]
    if failed:
        raise DbopsError(
            f"assert {target}: {len(failed)} of {len(results)} assertion(s) failed: "
            + "; ".join(f"{r['name']}: {r['error']}" for r in failed),
            assertions=list(results), failed_assertions=[r["name"] for r in failed],
        )


def pg_check(conn: Any, error_type: type[Exception], describe: Callable[[Exception], str]
             ) -> Callable[[dict[str, Any]], str | None]:
    """A ``check`` for :func:`run_all` running each assertion's SQL read-only on ``conn`` (autocommit)."""

    def check(item: dict[str, Any]) -> str | None:
        with conn.cursor() as cur:
            cur.execute("BEGIN READ ONLY")
            try:
                cur.execute(item["sql"])
                rows = cur.fetchall() if cur.description else []
            except error_type as exc:
                return describe(exc)
            finally:
                cur.execute("ROLLBACK")
        return judge_rows(rows)

    return check


def mongo_check(db: Any, error_type: type[Exception]) -> Callable[[dict[str, Any]], str | None]:
    """A ``check`` for :func:`run_all` counting documents in ``db`` (a pymongo Database)."""

    def check(item: dict[str, Any]) -> str | None:
        try:
            actual = db[item["collection"]].count_documents(item.get("filter") or {})
        except error_type as exc:
            return f"count in {item['collection']}: {exc}"
        return judge_count(actual, int(item["count"]))

    return check
