"""Throwaway PostgreSQL clusters for tests, or an external server named by DBOPS_TEST_PG_DSN.

A cluster is initialised with initdb in a temp dir (as ``nobody`` when the tests run as root,
since PostgreSQL refuses to run as root), uses scram-sha-256 for every connection, listens on a
free port on 127.0.0.1 and is stopped by PID.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions

from tests.harness.proc import free_port, stop_pid, wait_for_port
from tests.harness.tls import TlsFiles, make_tls_files

UNPRIVILEGED_USER = "nobody"
# Debian's PostgreSQL 15 (the default major), or DBOPS_PG_BINDIR.
PG_BINDIR = Path(os.environ.get("DBOPS_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
REPO = Path(__file__).resolve().parents[2]
# Binaries installed by scripts/setup_pg_majors.sh: servers per major and the client tools of 18.
PG_CACHE = REPO / ".cache" / "pg"
DEFAULT_MAJOR = 15
# Every major the collection supports; 15 is Debian's package, the others come from .cache/pg.
SUPPORTED_MAJORS = (13, 14, 15, 16, 17, 18)


def majors_under_test(option: str | None = None) -> list[int]:
    """The server majors to test on: ``option`` (pytest --pg-versions) or DBOPS_TEST_PG_VERSIONS,
    "13,14,18" or "all"; default 15."""
    raw = (option or os.environ.get("DBOPS_TEST_PG_VERSIONS", "")).strip()
    if not raw:
        return [DEFAULT_MAJOR]
    if raw == "all":
        return list(SUPPORTED_MAJORS)
    majors = [int(part) for part in raw.replace(" ", ",").split(",") if part]
    return list(dict.fromkeys(majors))


def bindir_for(major: int) -> Path:
    """Server binaries of ``major``: DBOPS_PG_BINDIR (only for the default major), Debian's
    /usr/lib/postgresql/<major>/bin, else .cache/pg/<major>/bin."""
    override = os.environ.get("DBOPS_PG_BINDIR")
    if override and major == DEFAULT_MAJOR:
        return Path(override)
    for candidate in (Path(f"/usr/lib/postgresql/{major}/bin"), PG_CACHE / str(major) / "bin"):
        if (candidate / "postgres").exists():
            return candidate
    raise RuntimeError(f"no PostgreSQL {major} server binaries: run scripts/setup_pg_majors.sh {major}")


def client_tools_dir() -> Path | None:
    """The PostgreSQL 18 client tools (pg_dump, pg_restore, psql) when they are installed."""
    tools = PG_CACHE / "tools-18" / "bin"
    return tools if (tools / "pg_dump").exists() else None


@dataclass
class PgServer:
    """Where a test PostgreSQL server listens and how to log in as its superuser."""

    host: str
    port: int
    user: str
    password: str
    dbname: str = "postgres"
    datadir: Path | None = None
    socket_dir: Path | None = None
    tls: TlsFiles | None = None
    pid: int | None = None
    external: bool = False
    major: int = DEFAULT_MAJOR
    _created: list[str] = field(default_factory=list)

    def params(self, **overrides: Any) -> dict[str, Any]:
        """Module connection options for the superuser."""
        params: dict[str, Any] = {
            "login_host": self.host,
            "login_port": self.port,
            "login_user": self.user,
            "login_password": self.password,
        }
        params.update(overrides)
        return params

    def connect(self, dbname: str | None = None, user: str | None = None,
                password: str | None = None, autocommit: bool = True) -> Any:
        conn = psycopg2.connect(host=self.host, port=self.port, user=user or self.user,
                                password=password if password is not None else self.password,
                                dbname=dbname or self.dbname, connect_timeout=10)
        conn.autocommit = autocommit
        return conn

    def query(self, sql: str, args: Any = None, dbname: str | None = None) -> list[tuple[Any, ...]]:
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def create_database(self, prefix: str = "t") -> str:
        """A fresh, uniquely named database (dropped when the server fixture ends)."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.query(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        return name

    def drop_created(self) -> None:
        for name in self._created:
            self.query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._created.clear()


def _as_unprivileged() -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    return {"user": UNPRIVILEGED_USER, "group": pwd.getpwnam(UNPRIVILEGED_USER).pw_gid,
            "extra_groups": []}


def _chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(UNPRIVILEGED_USER)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def start_cluster(tls_required: bool = False, settings: dict[str, str] | None = None,
                  major: int = DEFAULT_MAJOR) -> PgServer:
    """initdb + start a cluster of ``major``; with ``tls_required`` only TLS connections are accepted."""
    bindir = bindir_for(major)
    base = Path(tempfile.mkdtemp(prefix="dbops-pg-"))
    base.chmod(0o755)
    datadir, socket_dir = base / "data", base / "sock"
    socket_dir.mkdir()
    password = secrets.token_urlsafe(16)
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    _chown_tree(base)
    sub = _as_unprivileged()
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "--auth=scram-sha-256",
         f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
        check=True, capture_output=True, **sub,
    )
    pwfile.unlink()
    port = free_port()
    conf = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port),
        "unix_socket_directories": f"'{socket_dir}'",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "60",
        "shared_buffers": "32MB",
        "log_min_messages": "warning",
    }
    tls = None
    if tls_required:
        tls = make_tls_files(base / "tls")
        _chown_tree(base / "tls")
        conf.update(ssl="on", ssl_cert_file=f"'{tls.server_cert}'", ssl_key_file=f"'{tls.server_key}'",
                    ssl_ca_file=f"'{tls.ca_cert}'")
        (datadir / "pg_hba.conf").write_text(
            "local all all scram-sha-256\n"
            "hostssl all all 127.0.0.1/32 scram-sha-256\n"
        )
    conf.update(settings or {})
    with (datadir / "postgresql.conf").open("a") as handle:
        handle.write("\n# dbops test harness\n")
        for key, value in conf.items():
            handle.write(f"{key} = {value}\n")
    logfile = base / "server.log"
    result = subprocess.run(
        [str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(logfile), "-w", "-t", "60", "start"],
        check=False, capture_output=True, text=True, **sub,
    )
    if result.returncode != 0:
        log = logfile.read_text() if logfile.exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {result.stderr}\n{log}")
    pid = int((datadir / "postmaster.pid").read_text().splitlines()[0])
    wait_for_port("127.0.0.1", port)
    return PgServer(host="127.0.0.1", port=port, user="postgres", password=password,
                    datadir=datadir, socket_dir=socket_dir, tls=tls, pid=pid, major=major)


def stop_cluster(server: PgServer) -> None:
    """Fast shutdown by PID (SIGINT), then remove the temp dir."""
    if server.external:
        server.drop_created()
        return
    if server.pid:
        stop_pid(server.pid, signal.SIGINT)
    if server.datadir is not None:
        shutil.rmtree(server.datadir.parent, ignore_errors=True)


def external_server(dsn: str) -> PgServer:
    parts = psycopg2.extensions.parse_dsn(dsn)
    server = PgServer(host=parts.get("host", "127.0.0.1"), port=int(parts.get("port", 5432)),
                      user=parts.get("user", "postgres"), password=parts.get("password", ""),
                      dbname=parts.get("dbname", "postgres"), external=True)
    server.major = int(server.query("SHOW server_version_num")[0][0]) // 10000
    return server
