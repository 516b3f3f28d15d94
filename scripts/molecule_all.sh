#!/usr/bin/env bash
# Run the Molecule scenarios one after another (all of them, or the ones named as arguments) and
# print each scenario's wall time. Builds (or reuses) the test image first.
#
#   scripts/molecule_all.sh                      # postgresql mongodb db_monitoring db_backup e2e backup_repo cluster
#   scripts/molecule_all.sh postgresql           # one scenario
#   MOLECULE_COMMAND=converge scripts/molecule_all.sh postgresql   # keep the container
#
# Env: DBOPS_MOLECULE_CACHE (default .cache/molecule): apt and pip download caches;
#      DBOPS_VENV (default .venv of this checkout, made by scripts/setup.sh) whose bin/ has molecule,
#      ansible and pytest-testinfra; DBOPS_TEST_IMAGE; MOLECULE_COMMAND (default test).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
DBOPS_VENV="${DBOPS_VENV:-$here/.venv}"
export PATH="$DBOPS_VENV/bin:$PATH"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/molecule/containers.conf}"
# Controller temp files of this checkout only (other checkouts on the same machine clean theirs).
export ANSIBLE_LOCAL_TEMP="$here/.cache/ansible/tmp"
export ANSIBLE_NOCOLOR=1 NO_COLOR=1 PY_COLORS=0 ANSIBLE_FORCE_COLOR=0
# The checkout is the collection dbops.datastores; community.* come from the venv's `ansible` package.
link="$here/.build/collections/ansible_collections/dbops/datastores"
mkdir -p "$(dirname "$link")"
[ -L "$link" ] || ln -s "$here" "$link"
export ANSIBLE_COLLECTIONS_PATH="$here/.build/collections"

# Package downloads cached between runs (mounted into the containers by .config/molecule/config.yml).
export DBOPS_MOLECULE_CACHE="${DBOPS_MOLECULE_CACHE:-$here/.cache/molecule}"
mkdir -p "$DBOPS_MOLECULE_CACHE/apt/partial" "$DBOPS_MOLECULE_CACHE/apt-pg1/partial" \
  "$DBOPS_MOLECULE_CACHE/apt-mongo1/partial" "$DBOPS_MOLECULE_CACHE/apt-pg2/partial" "$DBOPS_MOLECULE_CACHE/apt-pg3/partial" "$DBOPS_MOLECULE_CACHE/pip" \
  "$DBOPS_MOLECULE_CACHE/apt-bpg1/partial" "$DBOPS_MOLECULE_CACHE/apt-bmongo1/partial" "$DBOPS_MOLECULE_CACHE/apt-brepo1/partial"

"$here/scripts/build_test_image.sh"

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(postgresql mongodb db_monitoring db_backup e2e backup_repo cluster)
status=0
for scenario in "${scenarios[@]}"; do
  start=$(date +%s)
  if molecule "${MOLECULE_COMMAND:-test}" -s "$scenario"; then result=passed; else result=FAILED; status=1; fi
  echo "molecule_all: scenario $scenario $result in $(( $(date +%s) - start )) s"
done
exit "$status"
