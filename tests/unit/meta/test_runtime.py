"""meta/runtime.yml: every module is in the action group of its engine, so module_defaults work."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def _modules() -> list[str]:
    return sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


def _groups() -> dict[str, list[str]]:
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    return runtime["action_groups"]


FRAGMENT_GROUP = {"dbops.datastores.postgres": "postgresql", "dbops.datastores.mongodb": "mongodb"}


def expected_groups(module: str) -> set[str]:
    """A module belongs to the group of each engine whose connection options it takes."""
    source = (ROOT / "plugins" / "modules" / f"{module}.py").read_text()
    tree = ast.parse(source)
    doc = next(
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCUMENTATION"
    )
    fragments = yaml.safe_load(doc).get("extends_documentation_fragment", [])
    return {FRAGMENT_GROUP[f] for f in fragments if f in FRAGMENT_GROUP}


def test_every_module_is_in_its_engine_group():
    groups = _groups()
    engine_groups = set(FRAGMENT_GROUP.values())
    for module in _modules():
        member_of = {name for name, members in groups.items() if module in members and name in engine_groups}
        assert member_of == expected_groups(module), f"{module} is in {sorted(member_of)}"


def test_groups_name_only_existing_modules():
    modules = set(_modules())
    for name, members in _groups().items():
        assert set(members) <= modules, f"group {name} names missing modules {set(members) - modules}"


def test_requires_ansible_matches_tested_core():
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    tested = next(
        line.split("==")[1].strip()
        for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
        if line.startswith("ansible-core==")
    )
    major_minor = ".".join(tested.split(".")[:2])
    assert runtime["requires_ansible"] == f">={major_minor}.0"
