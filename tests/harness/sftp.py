"""A throwaway OpenSSH server on a spare port for SFTP-only logins (off-host backup copies).

It mirrors the repository host's account: key-only login, ``ForceCommand internal-sftp``, its own
host key (pinned in a known_hosts file) and authorized key; nothing of the machine's ssh set-up is
used or changed (besides the privilege separation directory sshd needs).
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.harness.proc import free_port, wait_for_port

SSHD = "/usr/sbin/sshd"


@dataclass
class SftpServer:
    port: int
    user: str
    key_file: str
    known_hosts_file: str
    process: subprocess.Popen

    def repository(self, path: str) -> str:
        """restic's repository string for an absolute ``path`` on this server."""
        return f"sftp://{self.user}@127.0.0.1:{self.port}/{path}"


def available() -> bool:
    return os.path.exists(SSHD) and shutil.which("ssh") is not None and shutil.which("ssh-keygen") is not None


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dbops-test", "-f", str(path)],
                   check=True, capture_output=True)


def start(directory: Path) -> SftpServer:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _keygen(directory / "host_key")
    _keygen(directory / "id_ed25519")
    authorized = directory / "authorized_keys"
    authorized.write_text((directory / "id_ed25519.pub").read_text())
    authorized.chmod(0o600)
    port = free_port()
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} " + (directory / "host_key.pub").read_text())
    config = directory / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {directory / 'host_key'}",
        f"PidFile {directory / 'sshd.pid'}", f"AuthorizedKeysFile {authorized}",
        "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no",
        "Subsystem sftp internal-sftp", "ForceCommand internal-sftp", "LogLevel ERROR", ""]))
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=open(directory / "sshd.log", "ab"))  # noqa: SIM115 - lives with sshd
    try:
        wait_for_port("127.0.0.1", port, timeout=20)
    except Exception:
        process.kill()
        raise
    return SftpServer(port=port, user=getpass.getuser(), key_file=str(directory / "id_ed25519"),
                      known_hosts_file=str(known_hosts), process=process)


def stop(server: SftpServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)
