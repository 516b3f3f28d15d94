"""The db_migrate role's pre-flight: bad policy input and runs outside the maintenance window are
refused before any file is shipped or any database is touched (ansible-playbook, localhost)."""

from __future__ import annotations

import json

MONDAY_EVENING = "2026-11-30T18:00:00+00:00"
SATURDAY_NIGHT = "2026-12-05T02:30:00+01:00"
PG_SET = [{"database": "app", "path": "/nonexistent/migrations"}]


def run_role(ansible, variables, check=False):
    play = {"hosts": "localhost", "gather_facts": False,
            "roles": [{"role": "dbops.datastores.db_migrate", "vars": variables}]}
    path = ansible.workdir / f"role_{len(list(ansible.workdir.glob('role_*')))}.yml"
    path.write_text(json.dumps([play]))
    return ansible.playbook(path, check=check)


def failed_task(run):
    failed = [r for r in run.task_results() if r.get("failed")]
    assert len(failed) == 1, run.stdout
    return failed[0]


def ran(run, name_part):
    return [r["_task"] for r in run.task_results() if name_part in r["_task"] and not r.get("skipped")]


def test_outside_the_window_refuses_and_says_when_the_next_one_opens(ansible):
    run = run_role(ansible, {"db_migrate_windows": ["Sat 02:00-05:00 Europe/Berlin"],
                             "db_migrate_now": MONDAY_EVENING, "db_migrate_environment": "prod",
                             "db_migrate_pg_migrations": PG_SET})
    assert run.rc != 0
    failed = failed_task(run)
    assert failed["_task"].endswith("Refuse to migrate outside the maintenance window")
    assert failed["msg"] == (
        "migrate in environment prod: outside the maintenance window; the next one (Sat 02:00-05:00"
        " Europe/Berlin) opens at 2026-12-05T02:00+01:00; set db_migrate_ignore_window=true"
        " (migrate.yml: dbops_migrate_ignore_window=true) to migrate now anyway")
    # Nothing after the pre-flight ran: no primary check, no shipping, no plan.
    assert ran(run, "primary") == [] and ran(run, "Ship") == []


def test_inside_the_window_or_with_the_override_the_role_goes_on(ansible):
    # No migrations configured: the whole role runs through and changes nothing.
    berlin = ["Sat 02:00-05:00 Europe/Berlin"]
    for variables in ({"db_migrate_windows": berlin, "db_migrate_now": SATURDAY_NIGHT},
                      {"db_migrate_windows": berlin, "db_migrate_now": MONDAY_EVENING,
                       "db_migrate_ignore_window": True},
                      {"db_migrate_windows": []}):
        run = run_role(ansible, variables)
        assert run.rc == 0, run.stdout
        assert run.stats["localhost"]["changed"] == 0
        assert run.stats["localhost"]["failures"] == 0


def test_check_mode_plans_outside_the_window(ansible):
    run = run_role(ansible, {"db_migrate_windows": ["Sat 02:00-05:00 UTC"], "db_migrate_now": MONDAY_EVENING},
                   check=True)
    assert run.rc == 0, run.stdout


def test_bad_input_fails_before_anything_runs(ansible):
    run = run_role(ansible, {"db_migrate_windows": ["Saturday night"], "db_migrate_pg_migrations": PG_SET})
    assert run.rc != 0
    failed = failed_task(run)
    assert failed["_task"].endswith("Evaluate the maintenance windows")
    assert ("parse maintenance window 'Saturday night': expected <days> <HH:MM>-<HH:MM> <time zone>"
            in failed["msg"])
    assert ran(run, "primary") == []

    run = run_role(ansible, {"db_migrate_lock_retries": -1, "db_migrate_pg_migrations": PG_SET})
    assert run.rc != 0
    failed = failed_task(run)
    assert failed["_task"].endswith("Check the failure policy")
    assert "db_migrate: invalid policy (lock_retries -1," in failed["msg"]
    assert ran(run, "primary") == []

    run = run_role(ansible, {"db_migrate_on_sessions": "ignore", "db_migrate_pg_migrations": PG_SET})
    assert run.rc != 0
    assert "db_migrate_on_sessions" in failed_task(run)["msg"]  # the role's argument spec
    assert ran(run, "primary") == []
