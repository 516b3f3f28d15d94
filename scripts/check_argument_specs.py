#!/usr/bin/env python3
"""Check that each role's meta/argument_specs.yml agrees with its defaults/main.yml.

For every role under ``roles/`` (entry point ``main``):

- every option has a ``type`` (nested ``options`` too) and is prefixed with the role name;
- every variable in defaults/ is documented, and every documented default equals defaults/;
- every documented optional option has a default in defaults/, except secrets (``no_log``),
  which must have no default at all (secrets never live in defaults);
- required options have no default;
- each default's value fits its declared type.

Usage: ``scripts/check_argument_specs.py [ROLES_DIR]``; exits 1 and lists the problems.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROLES_DIR = Path(__file__).resolve().parent.parent / "roles"
SECRET_SUFFIXES = ("_password", "_secret", "_token", "_keyfile_content", "_private_key")

_TYPE_CHECKS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "path": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


def _fits_type(value: Any, type_name: str) -> bool:
    if type_name == "raw" or value is None:
        return True
    expected = _TYPE_CHECKS.get(type_name)
    if expected is None:
        return False
    if type_name in ("int", "float") and isinstance(value, bool):
        return False
    return isinstance(value, expected)


def _check_types(options: dict[str, Any], where: str) -> list[str]:
    problems = []
    for name, raw_spec in options.items():
        spec = raw_spec or {}
        if "type" not in spec:
            problems.append(f"{where}{name}: no type")
        elif spec["type"] not in (*_TYPE_CHECKS, "raw"):
            problems.append(f"{where}{name}: unknown type {spec['type']!r}")
        if "default" in spec and "type" in spec and not _fits_type(spec["default"], spec["type"]):
            problems.append(f"{where}{name}: default {spec['default']!r} is not a {spec['type']}")
        if spec.get("options"):
            problems.extend(_check_types(spec["options"], f"{where}{name}."))
    return problems


def _load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _check_defaults(defaults: dict[str, Any], options: dict[str, Any], prefix: str) -> list[str]:
    problems = []
    for name, value in defaults.items():
        if not name.startswith(prefix):
            problems.append(f"default {name} is not prefixed with {prefix}")
        if name not in options:
            problems.append(f"default {name} is not in meta/argument_specs.yml")
        if name.endswith(SECRET_SUFFIXES) and value not in (None, ""):
            problems.append(f"default {name} looks like a secret; secrets have no default")
    return problems


def _check_option(name: str, spec: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    secret = bool(spec.get("no_log"))
    if secret or spec.get("required"):
        kind = "secret (no_log)" if secret else "required"
        problems = []
        if name in defaults:
            problems.append(f"option {name} is {kind} but has a value in defaults/main.yml")
        if "default" in spec:
            problems.append(f"option {name} is {kind} but declares a default")
        return problems
    if name not in defaults:
        return [f"option {name} has no value in defaults/main.yml"]
    if "default" not in spec:
        return [f"option {name} declares no default (defaults/main.yml has one)"]
    if spec["default"] != defaults[name]:
        return [
            f"option {name} default {spec['default']!r} differs from defaults/main.yml {defaults[name]!r}"
        ]
    if "type" in spec and not _fits_type(defaults[name], spec["type"]):
        return [f"defaults/main.yml {name} is not a {spec['type']}"]
    return []


def check_role(role_dir: Path) -> list[str]:
    """Return the problems of one role, each prefixed with the role name."""
    role = role_dir.name
    prefix = f"{role}_"
    defaults_file = role_dir / "defaults" / "main.yml"
    specs_file = role_dir / "meta" / "argument_specs.yml"
    if not specs_file.is_file():
        return [f"{role}: meta/argument_specs.yml is missing"]
    defaults = (_load_yaml(defaults_file) if defaults_file.is_file() else None) or {}
    try:
        options = _load_yaml(specs_file)["argument_specs"]["main"].get("options") or {}
    except (KeyError, TypeError):
        return [f"{role}: meta/argument_specs.yml has no argument_specs.main entry point"]

    problems = _check_types(options, "") + _check_defaults(defaults, options, prefix)
    for name, spec in options.items():
        if not name.startswith(prefix):
            problems.append(f"option {name} is not prefixed with {prefix}")
        problems.extend(_check_option(name, spec or {}, defaults))
    return [f"{role}: {problem}" for problem in problems]


def check_roles(roles_dir: Path = ROLES_DIR) -> list[str]:
    problems = []
    for role_dir in sorted(p for p in roles_dir.iterdir() if p.is_dir()):
        problems.extend(check_role(role_dir))
    return problems


def main(argv: list[str]) -> int:
    roles_dir = Path(argv[1]) if len(argv) > 1 else ROLES_DIR
    problems = check_roles(roles_dir)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"argument specs match defaults in {roles_dir}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
