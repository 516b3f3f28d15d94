"""The migrate modules' AnsibleModule: what it logs on the host for files shipped from ``src``."""

from __future__ import annotations

import base64
import json

import pytest
from ansible.module_utils import basic

from ansible_collections.dbops.datastores.plugins.module_utils._migrate_module import MigrateModule
from ansible_collections.dbops.datastores.plugins.modules import pg_migrate

FILES = {name: base64.b64encode(f"SELECT '{name} marker';".encode()).decode()
         for name in ("V1__first.sql", "V2__second.sql")}


@pytest.fixture
def logged(monkeypatch):
    """The module's arguments as the action plugin sends them with ``src``; what AnsibleModule logs."""
    args = {"src": "/srv/migrations", "files": FILES, "login_db": "app"}
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    messages: list[str] = []
    monkeypatch.setattr(basic.AnsibleModule, "log",
                        lambda self, msg, log_args=None: messages.append(f"{msg} {log_args}"))
    return messages


def module(cls):
    return cls(argument_spec=pg_migrate.argument_spec(), supports_check_mode=True)


def test_the_host_log_counts_the_shipped_files_instead_of_their_content(logged):
    built = module(MigrateModule)
    assert len(logged) == 1
    assert "(2 files read from src)" in logged[0]
    assert not any(content in logged[0] for content in FILES.values())
    assert built.params["files"] == FILES  # the module itself still has them


def test_a_plain_ansible_module_would_log_every_file(logged):
    """Why MigrateModule exists: AnsibleModule logs each option's value, the files' content too."""
    module(basic.AnsibleModule)
    assert all(content in logged[0] for content in FILES.values())
