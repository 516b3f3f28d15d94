"""Run modules and playbooks through the real ``ansible-playbook``, as users do.

The collection under test is the checkout that holds this file, linked as
``.build/collections/ansible_collections/dbops/datastores``; community collections come from the
``ansible`` package in the venv. Results are read with the ``ansible.posix.json`` callback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS_PATH = REPO_ROOT / ".build" / "collections"


def ensure_collection_link(repo_root: Path = REPO_ROOT) -> Path:
    """Make ``.build/collections/ansible_collections/dbops/datastores`` point at the checkout."""
    link = repo_root / ".build" / "collections" / "ansible_collections" / "dbops" / "datastores"
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.resolve() == repo_root.resolve():
        return link
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(repo_root.resolve(), target_is_directory=True)
    return link


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    data: dict[str, Any] | None

    def task_results(self, host: str = "localhost") -> list[dict[str, Any]]:
        """Each task's result for ``host``, in order, with the task name under ``_task``."""
        results = []
        for play in (self.data or {}).get("plays", []):
            for task in play.get("tasks", []):
                result = task.get("hosts", {}).get(host)
                if result is not None:
                    results.append({"_task": task["task"]["name"], **result})
        return results

    @property
    def stats(self) -> dict[str, Any]:
        return (self.data or {}).get("stats", {})


class AnsibleRunner:
    """Runs ``ansible-playbook`` with the collection under test and parses the JSON output."""

    def __init__(self, workdir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        ensure_collection_link()
        self.inventory = workdir / "inventory.ini"
        self.inventory.write_text(
            f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
        )
        # An empty config of our own, so no ansible.cfg from the environment changes the run.
        self.config = workdir / "ansible.cfg"
        self.config.write_text("[defaults]\n")
        self.env = dict(os.environ)
        self.env.update({
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCAL_TEMP": str(workdir / "tmp-local"),
            "ANSIBLE_REMOTE_TEMP": str(workdir / "tmp-remote"),
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_HOST_KEY_CHECKING": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "ANSIBLE_CONFIG": str(self.config),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        })
        self.env.update(extra_env or {})
        self._count = 0

    def playbook(self, playbook: Path | str, *, inventory: Path | str | None = None,
                 extra_vars: dict[str, Any] | None = None, check: bool = False, diff: bool = False,
                 env: dict[str, str] | None = None, args: list[str] | None = None,
                 timeout: float = 900) -> PlaybookRun:
        cmd = [str(Path(sys.executable).with_name("ansible-playbook")), "-i",
               str(inventory or self.inventory), str(playbook)]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        cmd += args or []
        run_env = dict(self.env)
        run_env.update(env or {})
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=run_env, cwd=self.workdir,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        data = None
        start = proc.stdout.find("{")
        if start >= 0:
            try:
                data = json.loads(proc.stdout[start:])
            except json.JSONDecodeError:
                data = None
        return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, data)

    def module(self, name: str, args: dict[str, Any] | None = None, *, check: bool = False,
               diff: bool = False, module_defaults: dict[str, Any] | None = None,
               env: dict[str, str] | None = None, task_env: dict[str, str] | None = None
               ) -> dict[str, Any]:
        """Run one module task on localhost and return its registered result."""
        fqcn = name if "." in name else f"dbops.datastores.{name}"
        task: dict[str, Any] = {"name": "module under test", fqcn: args or {}, "register": "result",
                                "ignore_errors": True}
        if task_env:
            task["environment"] = task_env
        play: dict[str, Any] = {"hosts": "localhost", "gather_facts": False, "tasks": [task]}
        if module_defaults:
            play["module_defaults"] = module_defaults
        self._count += 1
        path = self.workdir / f"module_{self._count}.yml"
        path.write_text(json.dumps([play], indent=1))
        run = self.playbook(path, check=check, diff=diff, env=env)
        results = run.task_results()
        if not results:
            raise AssertionError(
                f"ansible-playbook produced no result (rc={run.rc}):\n{run.stdout}\n{run.stderr}"
            )
        return results[0]
