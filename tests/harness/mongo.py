"""Throwaway MongoDB-wire servers (SecantusDB) for tests, or a real mongod named by env vars.

``DBOPS_TEST_MONGO_URI`` points the no-auth fixture at an external server and
``DBOPS_TEST_MONGO_AUTH_URI`` (a URI with root credentials) the auth fixture. Otherwise the
SecantusDB server from the test requirements is started on a free port in a temp dir and stopped
by PID. Differences between it and mongod are named where tests depend on them (see
``KNOWN_DIFFERENCES``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymongo
import pymongo.uri_parser

from tests.harness.proc import free_port, stop_pid, wait_for_port
from tests.harness.tls import TlsFiles, make_tls_files

# Where the test server is known to behave differently from mongod; tests cite these keys.
KNOWN_DIFFERENCES = {
    "view_collmod": "collMod on a view answers ok but does not change it",
    "collmod_index_hidden": "collMod {index: {hidden: ...}} answers ok but does not change the index",
    "text_hashed_indexes": "text and hashed indexes are refused",
    "users_info_for_all_dbs": "usersInfo {forAllDBs: true} returns nothing",
    "thin_server_status": "serverStatus lacks asserts, globalLock and wiredTiger sections",
}


def _server_binary() -> str:
    found = shutil.which("secantusd-py") or str(Path(sys.executable).with_name("secantusd-py"))
    return found


@dataclass
class MongoServer:
    host: str
    port: int
    user: str | None = None
    password: str | None = None
    uri: str | None = None
    tls: TlsFiles | None = None
    pid: int | None = None
    storage: Path | None = None
    external: bool = False
    log: Path | None = None
    _created: list[str] = field(default_factory=list)

    @property
    def auth(self) -> bool:
        return self.user is not None

    def params(self, **overrides: Any) -> dict[str, Any]:
        """Module connection options (as root when the server has auth)."""
        params: dict[str, Any]
        if self.uri:
            params = {"login_uri": self.uri}
        else:
            params = {"login_host": self.host, "login_port": self.port}
            if self.user:
                params.update(login_user=self.user, login_password=self.password,
                              login_database="admin")
        if self.tls:
            params.update(tls=True, tls_ca_file=str(self.tls.ca_cert))
        params.update(overrides)
        return params

    def client(self, **kwargs: Any) -> Any:
        if self.uri:
            return pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=10000, **kwargs)
        opts: dict[str, Any] = {"serverSelectionTimeoutMS": 10000}
        if self.user:
            opts.update(username=self.user, password=self.password, authSource="admin")
        if self.tls:
            opts.update(tls=True, tlsCAFile=str(self.tls.ca_cert))
        opts.update(kwargs)
        return pymongo.MongoClient(self.host, self.port, **opts)

    def database_name(self, prefix: str = "t") -> str:
        """A unique database name, dropped when the server fixture ends."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self._created.append(name)
        return name

    def drop_created(self) -> None:
        if not self._created:
            return
        with self.client() as client:
            for name in self._created:
                client.drop_database(name)
        self._created.clear()


def _launch(port: int, storage: Path, log: Path, auth: bool, tls: TlsFiles | None) -> int:
    args = [_server_binary(), "--host", "127.0.0.1", "--port", str(port),
            "--storage-path", str(storage), "--log-level", "WARNING"]
    if auth:
        args.append("--auth")
    if tls:
        args += ["--tls-cert-file", str(tls.server_cert), "--tls-key-file", str(tls.server_key)]
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=str(storage.parent))
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
    except TimeoutError:
        stop_pid(proc.pid)
        raise RuntimeError(f"the MongoDB test server did not start:\n{log.read_text()}") from None
    return proc.pid


def start_server(auth: bool = False, tls: bool = False) -> MongoServer:
    """Start a server; with ``auth`` a root user is created first, then it restarts with --auth."""
    base = Path(tempfile.mkdtemp(prefix="dbops-mongo-"))
    storage, log = base / "data", base / "server.log"
    tls_files = make_tls_files(base / "tls") if tls else None
    port = free_port()
    pid = _launch(port, storage, log, auth=False, tls=tls_files)
    server = MongoServer(host="127.0.0.1", port=port, pid=pid, storage=storage, tls=tls_files, log=log)
    if auth:
        password = secrets.token_urlsafe(16)
        with server.client() as client:
            client.admin.command("createUser", "root", pwd=password, roles=["root"])
        stop_pid(pid)
        server.pid = _launch(port, storage, log, auth=True, tls=tls_files)
        server.user, server.password = "root", password
    return server


def stop_server(server: MongoServer) -> None:
    if server.external:
        server.drop_created()
        return
    if server.pid:
        stop_pid(server.pid)
    if server.storage is not None:
        shutil.rmtree(server.storage.parent, ignore_errors=True)


def external_server(uri: str) -> MongoServer:
    parsed = pymongo.uri_parser.parse_uri(uri)
    host, port = parsed["nodelist"][0]
    return MongoServer(host=host, port=port, uri=uri, external=True,
                       user=parsed.get("username"), password=parsed.get("password"))


def env_uri(auth: bool) -> str | None:
    return os.environ.get("DBOPS_TEST_MONGO_AUTH_URI" if auth else "DBOPS_TEST_MONGO_URI")
