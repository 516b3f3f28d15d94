"""scripts/check_argument_specs.py: defaults/ and meta/argument_specs.yml must agree."""

from pathlib import Path

import pytest
import yaml

from scripts import check_argument_specs as checker


def make_role(tmp_path: Path, defaults: dict | None, options: dict, name: str = "demo") -> Path:
    role = tmp_path / "roles" / name
    (role / "defaults").mkdir(parents=True)
    (role / "meta").mkdir()
    if defaults is not None:
        (role / "defaults" / "main.yml").write_text(yaml.safe_dump(defaults))
    specs = {"argument_specs": {"main": {"short_description": "x", "options": options}}}
    (role / "meta" / "argument_specs.yml").write_text(yaml.safe_dump(specs))
    return role


def test_matching_role_has_no_problems(tmp_path):
    role = make_role(
        tmp_path,
        {"demo_port": 5432, "demo_items": [], "demo_name": "x", "demo_ratio": 0},
        {
            "demo_port": {"type": "int", "default": 5432},
            "demo_items": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {"name": {"type": "str", "required": True}},
            },
            "demo_name": {"type": "str", "default": "x"},
            "demo_ratio": {"type": "float", "default": 0},
            "demo_password": {"type": "str", "no_log": True},
            "demo_required": {"type": "str", "required": True},
        },
    )
    assert checker.check_role(role) == []


@pytest.mark.parametrize(
    ("defaults", "options", "expected"),
    [
        ({"demo_port": 5433}, {"demo_port": {"type": "int", "default": 5432}}, "differs from defaults"),
        ({"demo_port": 5432}, {}, "not in meta/argument_specs.yml"),
        ({}, {"demo_port": {"type": "int", "default": 5432}}, "no value in defaults/main.yml"),
        ({"demo_port": 5432}, {"demo_port": {"default": 5432}}, "demo_port: no type"),
        ({"demo_port": 5432}, {"demo_port": {"type": "int"}}, "declares no default"),
        ({"port": 5432}, {"port": {"type": "int", "default": 5432}}, "not prefixed"),
        ({"demo_password": "x"}, {"demo_password": {"type": "str", "no_log": True}}, "secret (no_log)"),
        (
            {"demo_admin_password": "changeme"},
            {"demo_admin_password": {"type": "str", "default": "changeme"}},
            "looks like a secret",
        ),
        ({"demo_user": "a"}, {"demo_user": {"type": "str", "required": True}}, "is required"),
        ({"demo_port": "5432"}, {"demo_port": {"type": "int", "default": "5432"}}, "is not a int"),
        ({"demo_flag": 1}, {"demo_flag": {"type": "bool", "default": 1}}, "is not a bool"),
        (
            {"demo_items": []},
            {"demo_items": {"type": "list", "default": [], "options": {"name": {"required": True}}}},
            "demo_items.name: no type",
        ),
    ],
)
def test_disagreements_are_reported(tmp_path, defaults, options, expected):
    problems = checker.check_role(make_role(tmp_path, defaults, options))
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("demo: ") for p in problems)


def test_missing_specs_file(tmp_path):
    role = tmp_path / "roles" / "bare"
    (role / "defaults").mkdir(parents=True)
    assert checker.check_role(role) == ["bare: meta/argument_specs.yml is missing"]


def test_main_exit_codes(tmp_path, capsys):
    make_role(tmp_path, {"demo_port": 1}, {"demo_port": {"type": "int", "default": 2}})
    assert checker.main(["x", str(tmp_path / "roles")]) == 1
    assert "differs" in capsys.readouterr().err


def test_the_collections_roles_agree():
    assert checker.check_roles() == []
