#!/usr/bin/env bash
# The shipped alert rules: rendered with the role defaults and with each inventory's values,
# checked with `promtool check rules`, and unit-tested with `promtool test rules` (every rule fires
# when it should and stays silent when it should not): tests/alerts/*.test.yml.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
out=.build/alerts
rm -rf "$out" && mkdir -p "$out"
python scripts/render_alert_rules.py "$out/dbops.yml"
for vars in inventories/*/group_vars/all/monitoring.yml; do
  [ -f "$vars" ] || continue
  env_name=$(basename "$(dirname "$(dirname "$(dirname "$vars")")")")
  python scripts/render_alert_rules.py "$out/dbops-$env_name.yml" "$vars"
done
promtool check rules "$out"/*.yml
promtool test rules tests/alerts/*.test.yml
