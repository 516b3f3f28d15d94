"""Process and port helpers shared by the server fixtures."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    Under pytest-xdist each worker takes only ports whose half (Linux hands out mostly odd ports
    to bind(0)) has its own index as remainder modulo the number of workers, so two workers never
    hand out the same port between its check and its use.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    for _attempt in range(1000):
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if count <= 1 or (port // 2) % count == index:
            return port
    raise RuntimeError(f"no free port for xdist worker {worker} of {count}")


def wait_for_port(host: str, port: int, timeout: float = 20.0) -> None:
    """Block until something accepts TCP connections on host:port, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s") from None
            time.sleep(0.1)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def stop_pid(pid: int, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
    """Send ``sig`` to ``pid`` and wait for it to exit; SIGKILL after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
        time.sleep(0.05)


def mount_tmpfs(path: Path | str, size: str, mode: str | None = None) -> None:
    """A tmpfs of ``size`` (mount's syntax, e.g. ``8m``) on ``path``; OSError when this host cannot mount
    (tests that need a small disk skip then)."""
    options = f"size={size}" + (f",mode={mode}" if mode else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                             check=False, capture_output=True, text=True)
    if mounted.returncode != 0:
        raise OSError(f"cannot mount a {size} tmpfs on {path}: {mounted.stderr.strip()}")


def resize_tmpfs(path: Path | str, size: str) -> None:
    """Give the tmpfs on ``path`` a new size (free space again)."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


def unmount(path: Path | str) -> None:
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)
