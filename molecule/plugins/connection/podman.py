# Copyright: dbops.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""containers.podman.podman with pipelining, for the Molecule scenarios (not part of the collection).

Molecule's podman driver names the connection ``podman``; the shared Molecule configuration puts
this directory first on the connection plugin path, so that name finds this plugin. It is
containers.podman.podman (same options, same file transfer) with two changes:

- pipelining: a module goes to the container on the standard input of one ``podman exec -i``
  (containers.podman's ``exec`` passes no standard input, so it declares no pipelining and every
  module costs six ``podman`` calls: mount, home directory, temporary directory, chmod, run,
  clean-up, about 0.2 s each here);
- the container's file system is mounted when a file is first transferred, not on every task.
"""

from __future__ import annotations

import shlex
from typing import Any

import yaml
from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ensure_connect
from ansible_collections.containers.podman.plugins.connection import podman as _upstream

PodmanConnection = _upstream.Connection

# containers.podman's options, and pipelining (ANSIBLE_PIPELINING, ansible_pipelining), which it
# does not declare. The loader reads DOCUMENTATION from the module object, so it may be derived.
_DOC = yaml.safe_load(_upstream.DOCUMENTATION)
_DOC["short_description"] = "containers.podman.podman with pipelining (dbops.datastores Molecule scenarios)"
_DOC["options"]["pipelining"] = {
    "description": "Run modules through the standard input of C(podman exec -i).",
    "type": "bool",
    "default": True,
    "env": [{"name": "ANSIBLE_PIPELINING"}],
    "ini": [{"section": "defaults", "key": "pipelining"}, {"section": "connection", "key": "pipelining"}],
    "vars": [{"name": "ansible_pipelining"}],
}
DOCUMENTATION = yaml.safe_dump(_DOC)

# What podman says when the container is not there to run a command in.
_NOT_RUNNING = (b"can only create exec sessions on running containers", b"no such container")


class Connection(PodmanConnection):
    transport = "podman"
    has_pipelining = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mounted = False

    def _connect(self) -> Connection:
        # The mount waits for the first file transfer (put_file / fetch_file).
        super(PodmanConnection, self)._connect()  # pylint: disable=bad-super-call
        self._connected = True
        return self

    def _mount(self) -> None:
        if not self._mounted:
            self._mounted = True
            PodmanConnection._connect(self)

    @ensure_connect
    def exec_command(self, cmd: str, in_data: bytes | None = None,
                     sudoable: bool = False) -> tuple[int, bytes, bytes]:
        super(PodmanConnection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)  # pylint: disable=bad-super-call
        # containers.podman's exec with -i: without in_data the command reads an empty input, as before.
        args = ["exec", "-i"] + (["--user", self.user] if self.user else [])
        argv = shlex.split(to_native(cmd, errors="surrogate_or_strict"))
        rc, stdout, stderr = self._podman(args, argv, in_data)
        # A stopped or removed container is an unreachable host, as a host that ssh cannot reach
        # (without pipelining, the temporary directory's failure made it one).
        if rc != 0 and any(m in stderr for m in _NOT_RUNNING):
            raise AnsibleConnectionFailure(to_native(stderr.strip()))
        return rc, stdout, stderr

    def put_file(self, in_path: str, out_path: str) -> None:
        self._mount()
        super().put_file(in_path, out_path)

    def fetch_file(self, in_path: str, out_path: str) -> None:
        self._mount()
        super().fetch_file(in_path, out_path)
