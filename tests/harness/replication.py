"""A streaming standby of a harness cluster: pg_basebackup into a physical slot, started on a free port."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from tests.harness import pg as pg_harness
from tests.harness.proc import free_port, wait_for_port


def _basebackup(major: int) -> str:
    """pg_basebackup of the server's major, else the 18 client tools' (the npm servers ship none;
    pg_basebackup copies servers of older majors)."""
    own = pg_harness.bindir_for(major) / "pg_basebackup"
    tools = pg_harness.client_tools_dir()
    if own.exists() or tools is None:
        return str(own)
    return str(tools / "pg_basebackup")


def start_standby(primary: pg_harness.PgServer, slot: str = "standby1") -> pg_harness.PgServer:
    """Start a standby of ``primary`` streaming from the existing physical slot ``slot``."""
    assert primary.datadir is not None
    base = Path(tempfile.mkdtemp(prefix="dbops-pg-standby-"))
    base.chmod(0o755)
    datadir, socket_dir = base / "data", base / "sock"
    socket_dir.mkdir()
    pg_harness._chown_tree(base)
    sub = pg_harness._as_unprivileged()
    env = {**os.environ, "PGPASSWORD": primary.password}
    subprocess.run(
        [
            _basebackup(primary.major),
            "-h",
            primary.host,
            "-p",
            str(primary.port),
            "-U",
            primary.user,
            "-D",
            str(datadir),
            "-R",
            "-S",
            slot,
            "-X",
            "stream",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        env=env,
        **sub,
    )
    # pg_basebackup -R writes every libpq option it knows into primary_conninfo; one of 17+ writes
    # options (sslnegotiation, ...) an older server's libpq rejects, so the standby gets its own.
    auto_conf = datadir / "postgresql.auto.conf"
    conninfo = (f"host={primary.host} port={primary.port} user={primary.user} "
                f"password={primary.password} sslmode=disable")
    lines = [line for line in auto_conf.read_text().splitlines() if not line.startswith("primary_conninfo")]
    auto_conf.write_text("\n".join([*lines, f"primary_conninfo = '{conninfo}'", ""]))
    port = free_port()
    with (datadir / "postgresql.conf").open("a") as handle:
        # The walreceiver reports cluster_name as its application_name in pg_stat_replication.
        handle.write(
            f"\nport = {port}\nunix_socket_directories = '{socket_dir}'\ncluster_name = '{slot}'\n"
        )
    logfile = base / "server.log"
    result = subprocess.run(
        [
            str(pg_harness.bindir_for(primary.major) / "pg_ctl"),
            "-D",
            str(datadir),
            "-l",
            str(logfile),
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=False,
        capture_output=True,
        text=True,
        **sub,
    )
    if result.returncode != 0:
        raise RuntimeError(f"standby start failed: {result.stderr}\n{logfile.read_text()}")
    pid = int((datadir / "postmaster.pid").read_text().splitlines()[0])
    wait_for_port("127.0.0.1", port)
    return pg_harness.PgServer(
        host="127.0.0.1",
        port=port,
        user=primary.user,
        password=primary.password,
        datadir=datadir,
        socket_dir=socket_dir,
        pid=pid,
        major=primary.major,
    )
