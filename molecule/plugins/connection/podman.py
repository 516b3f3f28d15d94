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

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

DOCUMENTATION = """
    name: podman
    short_description: containers.podman.podman with pipelining (dbops.datastores Molecule scenarios)
    description:
        - Runs commands and transfers files in an existing podman container, as containers.podman.podman.
        - Modules are pipelined through the standard input of C(podman exec -i).
    options:
      remote_addr:
        description: The container's name or ID.
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
          - name: ansible_podman_host
      remote_user:
        description: User inside the container.
        ini:
          - section: defaults
            key: remote_user
        env:
          - name: ANSIBLE_REMOTE_USER
        vars:
          - name: ansible_user
      podman_extra_args:
        description: Extra arguments to the podman command line.
        default: ''
        ini:
          - section: defaults
            key: podman_extra_args
        vars:
          - name: ansible_podman_extra_args
        env:
          - name: ANSIBLE_PODMAN_EXTRA_ARGS
      podman_executable:
        description: The podman executable.
        default: podman
        vars:
          - name: ansible_podman_executable
        env:
          - name: ANSIBLE_PODMAN_EXECUTABLE
      pipelining:
        description: Run modules through the standard input of one C(podman exec -i).
        type: bool
        default: true
        env:
          - name: ANSIBLE_PIPELINING
        ini:
          - section: defaults
            key: pipelining
          - section: connection
            key: pipelining
        vars:
          - name: ansible_pipelining
"""

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
        if in_data is None:
            rc, stdout, stderr = super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        else:
            super(PodmanConnection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)  # pylint: disable=bad-super-call
            args = ["exec", "-i"]
            if self.user:
                args.extend(("--user", self.user))
            rc, stdout, stderr = self._podman(args, shlex.split(to_native(cmd, errors="surrogate_or_strict")),
                                              in_data)
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
