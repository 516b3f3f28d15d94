"""pg_migrate / mongodb_migrate with ``src``: the action plugin reads the files on the controller.

Nothing is copied to the host; the four steps, the deleted-file rule, module_defaults of the action
groups and bad input behave as with ``path``.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys

from tests.harness.migrations import write_files as write
from tests.harness.runner import REPO_ROOT

PG_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "migrations" / "octopus"
MONGO_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "mongodb" / "migrations" / "octopus"


def ok(result):
    assert result.get("failed") is not True, result
    return result


def pg_history(pg_server, db):
    return [r[0] for r in pg_server.query(
        "SELECT script FROM dbops_schema_history WHERE success ORDER BY installed_rank", dbname=db)]


def test_pg_src_check_apply_again_verify_with_module_defaults(ansible, pg_server, pg_db, tmp_path):
    src = tmp_path / "controller" / "octopus"
    shutil.copytree(PG_FIXTURE, src)
    (src / "README.md").write_text("not a migration")
    (src / ".V99__hidden.sql").write_text("SELECT broken syntax here;")
    # Connection options come only from module_defaults of the action group.
    defaults = {"group/dbops.datastores.postgresql": pg_server.params(login_db=pg_db)}
    args = {"src": str(src)}
    scripts = sorted(p.name for p in PG_FIXTURE.glob("V*.sql"))

    check = ok(ansible.module("pg_migrate", args, check=True, diff=True, module_defaults=defaults))
    assert check["changed"] is True and check["version"] == "010"
    assert [s["script"] for s in check["plan"]] == scripts
    assert check["plan"][8]["sql"] == (src / "V009__add_service_optimization_tables.sql").read_text()
    assert f"# apply {scripts[-1]}" in check["diff"]["after"]
    assert pg_server.query("SELECT to_regclass('public.dbops_schema_history')", dbname=pg_db) == [(None,)]
    # The files travel in the arguments but are not echoed back in the result.
    shipped = [p for p in src.glob("*.sql") if not p.name.startswith(".")]
    assert check["invocation"]["module_args"]["files"] == f"({len(shipped)} files read from src)"

    apply = ok(ansible.module("pg_migrate", args, module_defaults=defaults))
    assert apply["changed"] is True and [a["script"] for a in apply["applied"]] == scripts
    again = ok(ansible.module("pg_migrate", args, module_defaults=defaults))
    assert again["changed"] is False and again["applied"] == []
    assert pg_history(pg_server, pg_db) == scripts
    assert pg_server.query("SELECT count(*) FROM information_schema.views WHERE table_schema = 'public'",
                           dbname=pg_db) == [(5,)]


def test_pg_src_deleted_file_placeholders_and_bad_input(ansible, pg_server, pg_db, tmp_path):
    src = tmp_path / "m"
    (src / "sub").mkdir(parents=True)
    (src / "V1__a.sql").write_text("CREATE TABLE a (id int);")
    (src / "sub" / "V2__b.sql").write_text("CREATE TABLE b (secret text DEFAULT '${token}');")
    base = pg_server.params(login_db=pg_db)
    secret = "s3cr3t-placeholder-value"

    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "apply with a secret placeholder", "no_log": True, "register": "r",
         "dbops.datastores.pg_migrate": {**base, "src": str(src), "placeholders": {"token": secret}}},
        {"name": "show", "ansible.builtin.debug": {"msg": "{{ r.changed }}"}},
    ]}]
    path = ansible.workdir / "secret.yml"
    path.write_text(json.dumps(play))
    run = ansible.playbook(path)
    assert run.rc == 0, run.stdout + run.stderr
    assert secret not in run.stdout and secret not in run.stderr
    assert pg_history(pg_server, pg_db) == ["V1__a.sql", "sub/V2__b.sql"]
    assert pg_server.query("SELECT column_default FROM information_schema.columns WHERE table_name = 'b'",
                           dbname=pg_db) == [(f"'{secret}'::text",)]

    # A file deleted on the controller is gone for the module at once: the applied V2 is missing.
    (src / "sub" / "V2__b.sql").unlink()
    gone = ansible.module("pg_migrate", {**base, "src": str(src), "placeholders": {"token": secret}})
    assert gone["failed"] is True
    assert "applied migration sub/V2__b.sql (version 2) is missing from" in gone["msg"]

    missing = ansible.module("pg_migrate", {**base, "src": str(tmp_path / "nowhere")})
    assert missing["failed"] is True and "Could not find or access" in missing["msg"]
    both = ansible.module("pg_migrate", {**base, "src": str(src), "path": str(src)})
    assert both["failed"] is True and "mutually exclusive" in both["msg"]
    forged = ansible.module("pg_migrate", {**base, "src": str(src), "files": {"V9__x.sql": "U0VMRUNUIDE="}})
    assert forged["failed"] is True and "files is set by the action plugin" in forged["msg"]
    neither = ansible.module("pg_migrate", base)
    assert neither["failed"] is True and "one of the following is required: path, src" in neither["msg"]
    assert pg_history(pg_server, pg_db) == ["V1__a.sql", "sub/V2__b.sql"]


def test_mongodb_src_check_apply_again(ansible, mongo_server, tmp_path):
    db = mongo_server.database_name("src")
    src = tmp_path / "mongo"
    shutil.copytree(MONGO_FIXTURE, src)
    args = {**mongo_server.params(), "database": db, "src": str(src)}

    planned = ok(ansible.module("mongodb_migrate", args, check=True))
    assert [(s["action"], s["version"]) for s in planned["plan"]] == [("apply", "1"), ("apply", "2")]
    with mongo_server.client() as client:
        assert "dbops_schema_history" not in client[db].list_collection_names()
    applied = ok(ansible.module("mongodb_migrate", args))
    assert [a["script"] for a in applied["applied"]] == sorted(p.name for p in src.glob("V*.yml"))
    again = ok(ansible.module("mongodb_migrate", args))
    assert again["changed"] is False and again["applied"] == []
    with mongo_server.client() as client:
        rows = list(client[db].dbops_schema_history.find({}, {"_id": 0, "script": 1, "success": 1}))
    assert rows == [{"script": p.name, "success": True} for p in sorted(src.glob("V*.yml"))]


MONGO_V1 = ("up:\n  - insert: messages\n"
            "    documents: [{_id: 1, storageLevel: hot}, {_id: 2, storageLevel: cold}]\n")
MONGO_V1_VERIFY = ("verify:\n  - command: {count: messages, query: {storageLevel: {$exists: false}}}\n"
                   "    expect: {n: 0}\n")


def test_mongodb_src_mode_verify_reads_the_shipped_files(ansible, mongo_server, tmp_path):
    """mode=verify with src checks the files the action plugin read on the controller, like a run does."""
    db = mongo_server.database_name("srcverify")
    src = write(tmp_path / "controller" / "m", {"V1__messages.yml": MONGO_V1,
                                                "V1__messages.verify.yml": MONGO_V1_VERIFY})
    # A managed host without the controller's directory: its interpreter moves src away while the
    # module runs (the action plugin has read it by then).
    away = src.with_name("m.on-the-controller-only")
    python = tmp_path / "host-python"
    python.write_text(f"#!/bin/sh\nmv {shlex.quote(str(src))} {shlex.quote(str(away))}\n"
                      f'{shlex.quote(sys.executable)} "$@"\nrc=$?\n'
                      f"mv {shlex.quote(str(away))} {shlex.quote(str(src))}\nexit $rc\n")
    python.chmod(0o755)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={python}\n")
    args = {**mongo_server.params(), "database": db, "src": str(src)}

    def run(*tasks):
        play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": f"task {i}", "dbops.datastores.mongodb_migrate": task, "ignore_errors": True}
            for i, task in enumerate(tasks)]}]
        path = ansible.workdir / f"src_verify_{len(list(ansible.workdir.glob('src_verify_*')))}.yml"
        path.write_text(json.dumps(play))
        results = ansible.playbook(path, inventory=inventory).task_results()
        assert len(results) == len(tasks), results
        return results

    applied, healthy = run(args, {**args, "mode": "verify"})
    assert [a["script"] for a in ok(applied)["applied"]] == ["V1__messages.yml"]
    assert healthy.get("failed") is not True, healthy["msg"]
    assert [(v["verify"], v["ok"]) for v in healthy["verified"]] == [("V1__messages.verify.yml", True)]
    assert src.is_dir()  # the host's interpreter put it back

    with mongo_server.client() as client:  # someone strips a field by hand
        client[db]["messages"].update_one({"_id": 2}, {"$unset": {"storageLevel": ""}})
    (drifted,) = run({**args, "mode": "verify"})
    assert drifted["failed"] is True and drifted["changed"] is False
    assert drifted["msg"] == (
        f"verify migrations of {db}: 1 of 1 verify scripts failed (the live data has drifted from the"
        " migrations): verify script V1__messages.verify.yml failed at check 1: n is 1, expected 0")
