# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A point-in-time restore drill: restore into a scratch directory, start it, check it, remove it.

The copy never touches the live cluster: the restore is a scratch restore (empty directory,
``archive_mode=off``, tablespaces inside the copy), the server listens on no TCP address, only on a
socket in a private 0700 directory next to the copy (its own pg_hba trusts that socket), and the
copy is stopped and removed in every case (failure, SIGTERM, SIGHUP, KeyboardInterrupt).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils import _pgbackrest
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

CHECK_TIMEOUT = 300
RESTORED_TO_SQL = ("SELECT to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', "
                   "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")


class DrillInterrupted(BaseException):
    """SIGTERM or SIGHUP during the drill: unwind through the cleanup."""


def run_dir(data_directory: str) -> str:
    """The copy's private socket/log directory, next to it."""
    return os.path.normpath(data_directory) + ".run"


def quote_setting(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def drill_settings(port: int, socket_dir: str) -> dict[str, str]:
    """What the copy runs with, appended to its postgresql.auto.conf (read last, so it wins over the
    restored postgresql.conf): no TCP, a private socket, its own pg_hba, never archiving or
    connecting to a primary, no hot standby (no parameter checks against the primary's settings)."""
    return {
        "port": str(port),
        "listen_addresses": quote_setting(""),
        "unix_socket_directories": quote_setting(socket_dir),
        "hba_file": quote_setting(os.path.join(socket_dir, "pg_hba.conf")),
        "archive_mode": "off",
        "hot_standby": "off",
        "primary_conninfo": quote_setting(""),
        "primary_slot_name": quote_setting(""),
        "logging_collector": "off",
        "ssl": "off",
        "cluster_name": quote_setting("dbops-pitr-drill"),
    }


def settings_text(settings: dict[str, str]) -> str:
    lines = ["", "# dbops.datastores pg_pitr_drill: a scratch copy, never archives, no TCP"]
    lines += [f"{key} = {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def check_port(port: int) -> None:
    if not 1024 <= port <= 65535:
        raise DbopsError(f"check port {port}: use an unprivileged port (1024-65535)")


def check_checks(checks: list[dict[str, Any]]) -> None:
    names = [check["name"] for check in checks]
    if len(set(names)) != len(names):
        raise DbopsError("check checks: names must be unique")


def bin_dir_for(bin_dir: str | None, pg_version: str) -> str:
    """The server binaries: ``bin_dir`` or Debian's /usr/lib/postgresql/<major>/bin."""
    path = bin_dir or f"/usr/lib/postgresql/{pg_version}/bin"
    for tool in ("pg_ctl", "psql"):
        if not os.access(os.path.join(path, tool), os.X_OK):
            raise DbopsError(f"find {tool} in {path}: not there; set bin_dir to the PostgreSQL "
                             f"{pg_version or '?'} binaries")
    return path


@contextlib.contextmanager
def signals_unwind() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into an exception so ``finally`` blocks still run."""

    def handler(signum: int, _frame: Any) -> None:
        raise DrillInterrupted(f"signal {signum}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def make_socket_dir(socket_dir: str) -> None:
    """The copy's private directory: its socket, its log and a pg_hba that trusts only that socket."""
    os.mkdir(socket_dir, 0o700)
    with open(os.path.join(socket_dir, "pg_hba.conf"), "w", encoding="utf-8") as handle:
        handle.write("# pg_pitr_drill: only the socket in this 0700 directory\nlocal all all trust\n")


def configure_copy(data_directory: str, port: int, socket_dir: str) -> None:
    if not os.path.exists(os.path.join(data_directory, "postgresql.conf")):
        # Debian keeps postgresql.conf in /etc: the copy gets an empty one of its own.
        with open(os.path.join(data_directory, "postgresql.conf"), "w", encoding="utf-8"):
            pass
    with open(os.path.join(data_directory, "postgresql.auto.conf"), "a", encoding="utf-8") as handle:
        handle.write(settings_text(drill_settings(port, socket_dir)))


def tail(path: str, limit: int = 1500) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-limit:]
    except OSError:
        return ""


def start(bin_dir: str, data_directory: str, socket_dir: str, timeout: int) -> None:
    log = os.path.join(socket_dir, "server.log")
    proc = subprocess.run([os.path.join(bin_dir, "pg_ctl"), "-D", data_directory, "-l", log, "-w",
                           "-t", str(timeout), "start"], check=False, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise DbopsError(f"start the restored copy in {data_directory}: pg_ctl failed "
                         f"({proc.stderr.strip() or proc.stdout.strip()}); server log: {tail(log)}")


def wait_ready(bin_dir: str, data_directory: str, socket_dir: str, *, port: int, user: str,
               timeout: int) -> None:
    """Until the copy has finished recovery and accepts connections (pg_ctl -w returns earlier,
    with hot standby off, while recovery still runs)."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        if _pgbackrest.running_postmaster(data_directory) is None:
            raise DbopsError(f"start the restored copy in {data_directory}: the server stopped during "
                             f"recovery; server log: {tail(os.path.join(socket_dir, 'server.log'))}")
        try:
            if psql(bin_dir, socket_dir, port, user, database="postgres",
                    sql="SELECT NOT pg_is_in_recovery()") == "t":
                return
        except DbopsError as exc:
            last = exc.msg
        if time.monotonic() > deadline:
            raise DbopsError(f"start the restored copy in {data_directory}: not ready after {timeout} s "
                             f"({last or 'still in recovery'})")
        time.sleep(0.2)


def stop(bin_dir: str, data_directory: str) -> None:
    """Fast shutdown; SIGKILL to the postmaster when that fails."""
    pid = _pgbackrest.running_postmaster(data_directory)
    if pid is None:
        return
    proc = subprocess.run([os.path.join(bin_dir, "pg_ctl"), "-D", data_directory, "-m", "fast", "-w",
                           "-t", "60", "stop"], check=False, capture_output=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0 and _pgbackrest.running_postmaster(data_directory) == pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _pgbackrest.running_postmaster(data_directory) == pid and time.monotonic() < deadline:
            time.sleep(0.2)


def psql(bin_dir: str, socket_dir: str, port: int, user: str, *, database: str, sql: str) -> str:
    proc = subprocess.run(
        [os.path.join(bin_dir, "psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", socket_dir,
         "-p", str(port), "-U", user, "-d", database, "-c", sql],
        check=False, capture_output=True, text=True, timeout=CHECK_TIMEOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "PGCONNECT_TIMEOUT": "10", "PGAPPNAME": "dbops-pitr-drill"})
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise DbopsError(lines[0] if lines else f"exit {proc.returncode}")
    return proc.stdout.strip()


def run_check(bin_dir: str, socket_dir: str, port: int, user: str, check: dict[str, Any]) -> dict[str, Any]:
    """One check: its SQL must return exactly one value, true."""
    result: dict[str, Any] = {"name": check["name"], "database": check["database"], "passed": False}
    try:
        value = psql(bin_dir, socket_dir, port, user, database=check["database"], sql=check["sql"])
    except DbopsError as exc:
        result["error"] = exc.msg
        return result
    except subprocess.TimeoutExpired:
        result["error"] = f"no answer within {CHECK_TIMEOUT} s"
        return result
    result["value"] = value
    result["passed"] = value == "t"
    if not result["passed"]:
        result["error"] = "the query must return one row with one true value"
    return result


def drill(params: dict[str, Any]) -> dict[str, Any]:
    """Restore, start, check, stop and remove; returns the result (raises DbopsError on failure,
    after the cleanup, with the partial result in its details)."""
    port = params["port"]
    check_port(port)
    checks = params["checks"] or []
    check_checks(checks)
    plan = _pgbackrest.plan_restore(
        params["pgbackrest_bin"], params["config"], params["stanza"],
        data_directory=params["data_directory"], mode="scratch",
        target_time=params["target_time"], target_action="promote")
    bin_dir = bin_dir_for(params["bin_dir"], plan["pg_version"])
    data_directory = plan["data_directory"]
    socket_dir = run_dir(data_directory)
    if _pgbackrest.directory_state(socket_dir) != "absent":
        raise DbopsError(f"restore into {data_directory}: {socket_dir} (the copy's socket directory) exists")
    result: dict[str, Any] = {"plan": plan, "checks": [], "cleaned_up": False}
    failure: DbopsError | None = None
    started = time.monotonic()
    try:
        with signals_unwind():
            try:
                make_socket_dir(socket_dir)
                _pgbackrest.execute_restore(plan)
                result["restore_seconds"] = round(time.monotonic() - started, 3)
                configure_copy(data_directory, port, socket_dir)
                start(bin_dir, data_directory, socket_dir, params["start_timeout"])
                wait_ready(bin_dir, data_directory, socket_dir, port=port, user=params["login_user"],
                           timeout=params["start_timeout"])
                result["rto_seconds"] = round(time.monotonic() - started, 3)
                restored_to = psql(bin_dir, socket_dir, port, params["login_user"], database="postgres",
                                   sql=RESTORED_TO_SQL)
                result["restored_to"] = restored_to or None
                for check in checks:
                    result["checks"].append(run_check(bin_dir, socket_dir, port, params["login_user"], check))
            finally:
                stop(bin_dir, data_directory)
                _pgbackrest.remove_scratch(data_directory, plan["existed"])
                shutil.rmtree(socket_dir, ignore_errors=True)
                result["cleaned_up"] = not os.path.exists(socket_dir) and (
                    plan["existed"] or not os.path.exists(data_directory))
    except DbopsError as exc:
        failure = exc
    except (DrillInterrupted, KeyboardInterrupt) as exc:
        cause = str(exc) or "keyboard interrupt"
        failure = DbopsError(f"run PITR drill: interrupted ({cause}); the copy was stopped and removed")
    except OSError as exc:
        failure = DbopsError(f"run PITR drill in {data_directory}: {exc}")
    if failure is not None:
        raise DbopsError(failure.msg, **{**failure.details, **result})
    failed = [check["name"] for check in result["checks"] if not check["passed"]]
    if failed:
        raise DbopsError(f"check the restored copy at {plan['target_time'] or 'end of WAL'}: "
                         f"{', '.join(failed)} failed", **result)
    return result
