"""A throwaway PostgreSQL cluster archiving into a local, encrypted pgBackRest repository.

The cluster comes from ``tests.harness.pg.start_cluster`` (run as ``nobody`` when the tests run as
root). pgBackRest runs as the cluster's user too (it refuses to back up as root, and archive-push
runs under the postmaster anyway); its configuration file (0600, owned by that user) holds the
repository path, ``repo1-cipher-type = aes-256-cbc`` and the passphrase, so no command line carries it.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness import pg as pg_harness
from tests.harness.proc import mount_tmpfs, unmount

STANZA = "main"


@dataclass
class PgbrStanza:
    server: pg_harness.PgServer
    base: Path
    config: Path
    repo: Path
    stanza: str
    passphrase: str
    bindir: Path

    @property
    def user(self) -> str | None:
        return pg_harness.UNPRIVILEGED_USER if os.geteuid() == 0 else None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PGPASSWORD"] = self.server.password
        env["HOME"] = str(self.base)
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``pgbackrest --config=<conf> --stanza=<stanza> <args>`` as the cluster's user."""
        argv = ["pgbackrest", f"--config={self.config}", f"--stanza={self.stanza}", *args]
        kwargs: dict[str, Any] = {"user": self.user} if self.user else {}
        result = subprocess.run(argv, check=False, capture_output=True, text=True, env=self.env(),
                                cwd=self.base, timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            raise RuntimeError(f"pgbackrest {' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout}\n{result.stderr}")
        return result

    def backup(self, kind: str = "full") -> None:
        self.run("backup", f"--type={kind}")

    def switch_wal(self) -> None:
        """Close the current WAL segment and wait until it is archived."""
        before = self.server.query("SELECT archived_count FROM pg_stat_archiver")[0][0]
        # Some WAL to close: a switch right after another one does nothing.
        self.server.query("SELECT pg_logical_emit_message(false, 'dbops-test', 'switch')")
        self.server.query("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 60
        while self.server.query("SELECT archived_count FROM pg_stat_archiver")[0][0] <= before:
            if time.monotonic() > deadline:
                raise TimeoutError("WAL segment not archived after 60 s")
            time.sleep(0.2)

    def scratch_dir(self, name: str) -> Path:
        """A path (not created) the cluster's user may create: for restores into a scratch directory."""
        path = self.base / "scratch" / name
        return path


def write_config(path: Path, *, repo: Path, stanza: str, passphrase: str, pg_path: Path | None,
                 pg_port: int | None, socket_dir: Path | None, log_dir: Path, lock_dir: Path,
                 spool_dir: Path) -> None:
    lines = [
        "[global]",
        f"repo1-path={repo}",
        "repo1-cipher-type=aes-256-cbc",
        f"repo1-cipher-pass={passphrase}",
        "repo1-retention-full=2",
        "compress-type=gz",
        "compress-level=3",
        "process-max=2",
        "start-fast=y",
        "log-level-console=warn",
        "log-level-file=info",
        f"log-path={log_dir}",
        f"lock-path={lock_dir}",
        f"spool-path={spool_dir}",
        "",
        f"[{stanza}]",
    ]
    if pg_path is not None:
        lines.append(f"pg1-path={pg_path}")
    if pg_port is not None:
        lines.append(f"pg1-port={pg_port}")
    if socket_dir is not None:
        lines.append(f"pg1-socket-path={socket_dir}")
    lines.append("pg1-user=postgres")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def chown_to_cluster_user(path: Path) -> None:
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(pg_harness.UNPRIVILEGED_USER)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def start_stanza(major: int = pg_harness.DEFAULT_MAJOR, settings: dict[str, str] | None = None,
                 archive: bool = True, repo_size: str | None = None) -> PgbrStanza:
    """A cluster with ``archive_command = pgbackrest archive-push`` and a created stanza (no backup yet);
    with ``repo_size`` the repository is a tmpfs of that size (OSError when it cannot be mounted)."""
    base = Path(tempfile.mkdtemp(prefix="dbops-pgbr-"))
    base.chmod(0o755)
    repo, logs, locks, spool, scratch = (base / n for n in ("repo", "log", "lock", "spool", "scratch"))
    for d in (repo, logs, locks, spool, scratch):
        d.mkdir(mode=0o750)
    if repo_size:
        try:
            mount_tmpfs(repo, repo_size, mode="0750")
        except OSError:
            shutil.rmtree(base, ignore_errors=True)
            raise
    config = base / "pgbackrest.conf"
    passphrase = secrets.token_urlsafe(24)
    write_config(config, repo=repo, stanza=STANZA, passphrase=passphrase, pg_path=None, pg_port=None,
                 socket_dir=None, log_dir=logs, lock_dir=locks, spool_dir=spool)
    chown_to_cluster_user(base)
    conf = {
        "archive_mode": "on",
        "archive_command": f"'pgbackrest --config={config} --stanza={STANZA} archive-push %p'",
        "wal_level": "replica",
        "max_wal_senders": "3",
    }
    if not archive:
        conf.pop("archive_command")
    conf.update(settings or {})
    try:
        server = pg_harness.start_cluster(settings=conf, major=major)
    except BaseException:
        unmount(repo)
        raise
    assert server.datadir is not None and server.socket_dir is not None
    write_config(config, repo=repo, stanza=STANZA, passphrase=passphrase, pg_path=server.datadir,
                 pg_port=server.port, socket_dir=server.socket_dir, log_dir=logs, lock_dir=locks,
                 spool_dir=spool)
    chown_to_cluster_user(config)
    stanza = PgbrStanza(server=server, base=base, config=config, repo=repo, stanza=STANZA,
                        passphrase=passphrase, bindir=pg_harness.bindir_for(major))
    try:
        stanza.run("stanza-create")
    except Exception:
        stop_stanza(stanza)
        raise
    return stanza


def stop_stanza(stanza: PgbrStanza) -> None:
    pg_harness.stop_cluster(stanza.server)
    unmount(stanza.repo)
    shutil.rmtree(stanza.base, ignore_errors=True)


def run_module_as(ansible: Any, stanza: PgbrStanza, name: str, args: dict[str, Any], *,
                  check: bool = False, task_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one module task as the cluster's user (``become`` with ``su``, the user has no login
    shell), as playbooks run it with ``become_user: postgres``; pipelining keeps the module out of
    root's temp directory."""
    fqcn = f"dbops.datastores.{name}"
    task: dict[str, Any] = {"name": "module under test", fqcn: args, "register": "result",
                            "ignore_errors": True}
    if task_env:
        task["environment"] = task_env
    play: dict[str, Any] = {"hosts": "localhost", "gather_facts": False, "tasks": [task]}
    if stanza.user:
        play.update({"become": True, "become_method": "ansible.builtin.su", "become_user": stanza.user,
                     "become_flags": "-s /bin/sh",
                     # The venv's python lives under root's home; the system's is what managed hosts run.
                     "vars": {"ansible_python_interpreter": "/usr/bin/python3"}})
    ansible._count += 1
    path = ansible.workdir / f"module_{ansible._count}.yml"
    path.write_text(json.dumps([play], indent=1))
    run = ansible.playbook(path, check=check, env={"ANSIBLE_PIPELINING": "1", "HOME": str(stanza.base)})
    results = run.task_results()
    if not results:
        raise AssertionError(f"ansible-playbook produced no result (rc={run.rc}):\n"
                             f"{run.stdout}\n{run.stderr}")
    return results[0]


def start_copy(stanza: PgbrStanza, data_directory: Path) -> tuple[pg_harness.PgServer, Path]:
    """Start a restored copy (as the cluster's user) on a free port; returns it and its log."""
    port = pg_harness.free_port()
    sock = Path(tempfile.mkdtemp(prefix="dbops-pgbr-sock-"))
    sock.chmod(0o755)
    chown_to_cluster_user(sock)
    with (data_directory / "postgresql.auto.conf").open("a") as handle:
        handle.write(f"\nport = {port}\nunix_socket_directories = '{sock}'\n")
    log = sock / "server.log"
    kwargs: dict[str, Any] = {"user": stanza.user} if stanza.user else {}
    result = subprocess.run([str(stanza.bindir / "pg_ctl"), "-D", str(data_directory), "-l", str(log), "-w",
                             "-t", "120", "start"], check=False, capture_output=True, text=True,
                            env=stanza.env(), **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"starting the restored copy failed: {result.stderr}\n{log.read_text()}")
    pid = int((data_directory / "postmaster.pid").read_text().splitlines()[0])
    copy = pg_harness.PgServer(host="127.0.0.1", port=port, user="postgres", password=stanza.server.password,
                               datadir=data_directory, socket_dir=sock, pid=pid)
    return copy, sock


def stop_copy(copy: pg_harness.PgServer, sock: Path) -> None:
    if copy.pid:
        pg_harness.stop_pid(copy.pid, signal.SIGINT)
    shutil.rmtree(sock, ignore_errors=True)
