# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``dbops-backup pgbackrest-backup``: a scheduled pgBackRest backup that reports to monitoring.

    dbops-backup pgbackrest-backup --stanza main --type full|diff|incr
        [--config /etc/pgbackrest/pgbackrest.conf] [--pgbackrest-bin pgbackrest]
        [--textfile-dir /var/lib/prometheus/node-exporter] [--file-mode 0644] [--lock-file PATH]

The pgbackrest role's cron jobs on the repository host run this instead of bare
``pgbackrest --stanza=X --type=T backup``. It

1. takes an exclusive lock (``--lock-file``, one per stanza, in pgBackRest's spool directory by
   default; opened as the backup root's locks are): an overlapping run does not start a
   second backup, prints why and exits 50 (pgBackRest's own code for a held lock) without touching
   the metrics;
2. runs ``pgbackrest --config=C --stanza=X --type=T backup`` with its output going where the wrapper's
   goes (cron mail, as before);
3. reads ``pgbackrest info --output=json`` for the stanza;
4. writes ``dbops_pgbackrest_<stanza>.prom`` atomically into ``--textfile-dir`` (none without it):
   metrics in ``_pgbackrest_metrics``.

The exit code is pgBackRest's (0 on success), whatever happens in steps 3 and 4; their failures
go to stderr (one line each, so cron mails them) and into ``dbops_pgbackrest_info_success``.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import subprocess
import sys
import time
from typing import Any

from ansible_collections.dbops.datastores.plugins.module_utils import _backup_catalog, _metrics, _pgbackrest
from ansible_collections.dbops.datastores.plugins.module_utils import _pgbackrest_metrics as pm
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError

EXIT_USAGE = 2
EXIT_LOCKED = 50  # pgBackRest's LockAcquireError: what a second `pgbackrest backup` would return
EXIT_NOT_FOUND = 127
# pgBackRest's spool directory (spool-path), owned by the repository user: never a directory that
# another user could put the lock file in first.
DEFAULT_LOCK_FILE = "/var/spool/pgbackrest/dbops-backup-%s.lock"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise DbopsError(f"read command line: {message}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="dbops-backup pgbackrest-backup",
                     description="A scheduled pgBackRest backup that writes node_exporter metrics")
    parser.add_argument("--stanza", required=True)
    parser.add_argument("--type", required=True, choices=pm.BACKUP_TYPES, dest="backup_type")
    parser.add_argument("--config", default=_pgbackrest.DEFAULT_CONFIG)
    parser.add_argument("--pgbackrest-bin", default="pgbackrest")
    parser.add_argument("--textfile-dir", default="",
                        help="node_exporter textfile directory; empty: no metrics")
    parser.add_argument("--file-mode", default="0644")
    parser.add_argument("--lock-file", default="", help=f"default: {DEFAULT_LOCK_FILE % '<stanza>'}")
    args = parser.parse_args(argv)
    _pgbackrest.check_stanza_name(args.stanza)  # an empty name fails here too
    try:
        args.mode = int(args.file_mode, 8)
    except ValueError:
        raise DbopsError(f"read command line: --file-mode {args.file_mode!r} is not octal") from None
    return args


def backup_argv(binary: str, config: str, stanza: str, backup_type: str) -> list[str]:
    argv = [*_pgbackrest.base_argv(binary, config, stanza), f"--type={backup_type}", "backup"]
    _pgbackrest.assert_no_secret(argv)
    return argv


def run_backup(argv: list[str]) -> int:
    """pgBackRest's exit code; its stdout and stderr are the wrapper's (cron mails them)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        return subprocess.run(argv, check=False, stdin=subprocess.DEVNULL).returncode
    except FileNotFoundError:
        _say(f"run pgbackrest backup: {argv[0]} not found; install pgbackrest")
        return EXIT_NOT_FOUND


def read_info(binary: str, config: str, stanza: str) -> dict[str, Any] | None:
    """The stanza's entry of ``pgbackrest info``; None (and one line on stderr) when unreadable."""
    try:
        raw = pm.find_stanza(_pgbackrest.parse_info(
            _pgbackrest.run(_pgbackrest.info_argv(binary, config, stanza),
                            f"read pgbackrest info of stanza {stanza}", timeout=600)), stanza)
    except DbopsError as exc:
        _say(exc.msg)
        return None
    if raw is None:
        _say(f"read pgbackrest info of stanza {stanza}: the stanza is not in pgBackRest's answer")
    return raw


def write(directory: str, stanza: str, fresh: list[_metrics.Metric], mode: int) -> str:
    name = pm.filename(stanza)
    previous = _metrics.read_samples(os.path.join(directory, name), {f.name for f in fresh})
    text = _metrics.render(pm.carry_over(fresh, previous))
    return _metrics.write_textfile(directory, name, text, mode)


def _say(line: str) -> None:
    sys.stderr.write(f"dbops-backup pgbackrest-backup: {line}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except DbopsError as exc:
        _say(exc.msg)
        return EXIT_USAGE
    lock_path = args.lock_file or DEFAULT_LOCK_FILE % args.stanza
    try:
        # As the backup root's locks: no symlink followed, a regular file, handed to the directory's
        # owner, so a run as root (by hand, with sudo) leaves a lock the cron job can still open.
        lock_fd = _backup_catalog.open_lock_file(os.path.dirname(lock_path) or ".",
                                                 os.path.basename(lock_path))
    except DbopsError as exc:
        _say(exc.msg)
        return EXIT_USAGE
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(f"lock stanza {args.stanza} ({lock_path}): another scheduled backup of it is running; "
                 "this one did not start")
            return EXIT_LOCKED
        started = time.monotonic()
        code = run_backup(backup_argv(args.pgbackrest_bin, args.config, args.stanza, args.backup_type))
        duration = time.monotonic() - started
        raw = read_info(args.pgbackrest_bin, args.config, args.stanza) if code != EXIT_NOT_FOUND else None
        if args.textfile_dir:
            try:
                fresh = pm.run_samples(args.stanza, args.backup_type, code, duration=duration,
                                       now=time.time(), raw=raw)
                write(args.textfile_dir, args.stanza, fresh, args.mode)
            except DbopsError as exc:
                _say(exc.msg)
        if code != 0:
            _say(f"pgbackrest --stanza={args.stanza} --type={args.backup_type} backup failed "
                 f"(exit {code}); see pgBackRest's log")
        return code
    finally:
        os.close(lock_fd)
