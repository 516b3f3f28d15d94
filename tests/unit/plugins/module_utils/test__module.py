"""What every module shares: DbopsModule's process end, fail_from_error's report."""

from __future__ import annotations

import gc
import json

import pytest
from ansible.module_utils import basic

from ansible_collections.dbops.datastores.plugins.module_utils import _postgres
from ansible_collections.dbops.datastores.plugins.module_utils._errors import DbopsError, MissingDriverError
from ansible_collections.dbops.datastores.plugins.module_utils._module import DbopsModule, fail_from_error


@pytest.fixture
def built(monkeypatch):
    """A DbopsModule with the PostgreSQL connection options, its arguments as ansible-core passes them."""
    args = {"login_db": "app", "login_password": "s3cret-value"}
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    monkeypatch.setattr(basic.AnsibleModule, "log", lambda self, msg, log_args=None: None)
    spec = _postgres.pg_argument_spec()
    gc.unfreeze()
    yield DbopsModule(argument_spec=spec, supports_check_mode=True)
    gc.unfreeze()


def ended(call) -> tuple[int, bool]:
    """Run ``call`` (which ends the module); its exit code and whether the heap was frozen first."""
    assert gc.get_freeze_count() == 0
    with pytest.raises(SystemExit) as end:
        call()
    return end.value.code, gc.get_freeze_count() > 0


@pytest.mark.parametrize(("end", "rc", "key"), [("exit_json", 0, "changed"), ("fail_json", 1, "failed")])
def test_the_process_ends_with_its_heap_frozen_and_the_same_result(built, capsys, end, rc, key):
    """Frozen objects are left out of the interpreter's collections at exit; the result is unchanged,
    secrets masked as AnsibleModule masks them."""
    if end == "exit_json":
        code, frozen = ended(lambda: built.exit_json(changed=True, note="s3cret-value seen"))
    else:
        code, frozen = ended(lambda: built.fail_json("connect app: refused", note="s3cret-value seen"))
    assert (code, frozen) == (rc, True)
    result = json.loads(capsys.readouterr().out)
    assert result[key] is True
    assert result["note"] == "******** seen"


def test_a_plain_ansible_module_leaves_the_heap_to_the_collector(built, capsys):
    """What DbopsModule changes: AnsibleModule's exit_json does not freeze."""
    plain = basic.AnsibleModule(argument_spec=_postgres.pg_argument_spec(), supports_check_mode=True)
    assert ended(lambda: plain.exit_json(changed=False)) == (0, False)
    assert json.loads(capsys.readouterr().out)["changed"] is False


def test_fail_from_error_reports_the_message_and_details_through_the_module(built, capsys):
    error = DbopsError("connect app: refused", host="db1")
    code, frozen = ended(lambda: fail_from_error(built, error, step=2))
    assert (code, frozen) == (1, True)
    result = json.loads(capsys.readouterr().out)
    assert (result["msg"], result["host"], result["step"]) == ("connect app: refused", "db1", 2)


def test_fail_from_error_names_a_missing_driver(built, capsys):
    error = MissingDriverError("psycopg2", "No module named 'psycopg2'")
    assert ended(lambda: fail_from_error(built, error))[0] == 1
    assert "psycopg2" in json.loads(capsys.readouterr().out)["msg"]
