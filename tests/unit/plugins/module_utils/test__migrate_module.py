"""The migrate modules' AnsibleModule: what it logs on the host for files shipped from ``src``; its
process's end."""

from __future__ import annotations

import base64
import gc
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


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("logged", "unfrozen")
@pytest.mark.parametrize(("end", "rc", "key"), [("exit_json", 0, "changed"), ("fail_json", 1, "failed")])
def test_the_process_ends_with_its_heap_frozen_and_the_result_written(capsys, end, rc, key):
    """Frozen objects are left out of the interpreter's collections at exit; the result is unchanged."""
    built = module(MigrateModule)
    assert gc.get_freeze_count() == 0
    with pytest.raises(SystemExit) as ended:
        if end == "exit_json":
            built.exit_json(changed=True, version="2")
        else:
            built.fail_json("V2__second.sql: syntax error", version="1")
    assert ended.value.code == rc
    assert gc.get_freeze_count() > 0
    result = json.loads(capsys.readouterr().out)
    assert result[key] is True
    assert result["version"] == ("2" if rc == 0 else "1")
