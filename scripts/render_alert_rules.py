"""Render roles/db_monitoring/templates/dbops-alerts.yml.j2 with the role's defaults, overridden by
the variables of the given YAML files (an inventory's group_vars), for promtool.

    python scripts/render_alert_rules.py OUT [VARS.yml ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import jinja2
import yaml

ROLE = Path(__file__).resolve().parents[1] / "roles" / "db_monitoring"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    variables = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()) or {}
    for path in argv[1:]:
        values = yaml.safe_load(Path(path).read_text()) or {}
        variables.update({k: v for k, v in values.items() if k.startswith("db_monitoring_alert_")})
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    text = env.from_string((ROLE / "templates" / "dbops-alerts.yml.j2").read_text()).render(**variables)
    out = Path(argv[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
