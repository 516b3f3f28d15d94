#!/usr/bin/env bash
# Run the Molecule scenarios (all of them, or the ones named as arguments) and print each
# scenario's wall time. Builds (or reuses) the test image first, once, before any scenario starts.
# The pseudo-scenario `demo` is `scripts/demo.sh test` (make demo-test), run like a scenario.
#
#   scripts/molecule_all.sh                      # postgresql mongodb db_monitoring db_backup e2e backup_repo cluster
#   scripts/molecule_all.sh postgresql           # one scenario
#   DBOPS_MOLECULE_LANES=2 scripts/molecule_all.sh postgresql e2e demo   # two lanes at once
#   MOLECULE_COMMAND=converge scripts/molecule_all.sh postgresql   # keep the container
#
# Lanes: with DBOPS_MOLECULE_LANES=2 the scenarios run in two lanes at the same time. Scenarios whose
# containers have the same name (none in the default list: each single-host scenario names its
# container after itself, the multi-host ones name their hosts apart) always share a lane and
# run in the given order there; such groups are placed, longest first, in the lane with less work,
# by each scenario's time in the last clean-clone run (SECONDS below; 150 s per host if unknown).
# Each scenario's output goes to .cache/molecule-logs/<scenario>.log and is printed in one piece
# when the scenario ends, followed by its time; the run fails if any scenario fails. With 1 lane
# (default) the output streams.
#
# Env: DBOPS_MOLECULE_CACHE (default .cache/molecule): apt and pip download caches;
#      DBOPS_VENV (default .venv of this checkout, made by scripts/setup.sh) whose bin/ has molecule,
#      ansible and pytest-testinfra; DBOPS_TEST_IMAGE; MOLECULE_COMMAND (default test);
#      DBOPS_MOLECULE_LANES (1 or 2, default 1); DBOPS_MOLECULE_DEMO=1: without arguments, run the
#      demo test (`demo`) after the default scenarios.
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
# One apt cache directory per container: a scenario with platforms of its own names them in its
# molecule.yml, one without has apt-<scenario> (.config/molecule/config.yml).
caches=("$DBOPS_MOLECULE_CACHE/pip")
for conf in molecule/*/molecule.yml; do
  scenario="$(basename "$(dirname "$conf")")"
  grep -q '^platforms:' "$conf" || caches+=("$DBOPS_MOLECULE_CACHE/apt-$scenario/partial")
  while read -r dir; do
    caches+=("$DBOPS_MOLECULE_CACHE/$dir/partial")
  done < <(grep -o '}/apt-[A-Za-z0-9_-]*:' "$conf" | sed 's#^}/##; s#:$##')
done
mkdir -p "${caches[@]}"

"$here/scripts/build_test_image.sh"

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(postgresql mongodb db_monitoring db_backup e2e backup_repo cluster)
# DBOPS_MOLECULE_DEMO=1 (make molecule-and-demo): the default list ends with the demo test.
[ $# -gt 0 ] || [ "${DBOPS_MOLECULE_DEMO:-0}" != 1 ] || scenarios+=(demo)
lanes="${DBOPS_MOLECULE_LANES:-1}"
case "$lanes" in 1|2) ;; *) echo "molecule_all: DBOPS_MOLECULE_LANES must be 1 or 2, not '$lanes'" >&2; exit 2 ;; esac

run_one() {  # scenario: run it (output to stdout)
  if [ "$1" = demo ]; then
    bash "$here/scripts/demo.sh" test
  else
    molecule "${MOLECULE_COMMAND:-test}" -s "$1"
  fi
}

if [ "$lanes" = 1 ]; then
  status=0
  for scenario in "${scenarios[@]}"; do
    start=$(date +%s)
    if run_one "$scenario"; then result=passed; else result=FAILED; status=1; fi
    echo "molecule_all: scenario $scenario $result in $(( $(date +%s) - start )) s"
  done
  exit "$status"
fi

# Two lanes. The lane of each scenario: groups of scenarios that share a container name stay together.
logs="$here/.cache/molecule-logs"
rm -rf "$logs" && mkdir -p "$logs"
assignment="$(python3 - "${scenarios[@]}" <<'PY'
import sys
import yaml

scenarios = sys.argv[1:]
hosts = {}
for s in scenarios:
    if s == "demo":
        hosts[s] = ["dbops-demo-test"]
        continue
    with open(f"molecule/{s}/molecule.yml", encoding="utf-8") as f:
        conf = yaml.safe_load(f) or {}
    # Without platforms of its own, a scenario's one container is named after it (.config/molecule).
    hosts[s] = [p["name"] for p in conf.get("platforms") or [{"name": s}]]
groups = []  # lists of scenarios, in the given order; merged while they share a container name
for s in scenarios:
    touching = [g for g in groups if any(set(hosts[s]) & set(hosts[o]) for o in g)]
    merged = [o for g in touching for o in g] + [s]
    groups = [g for g in groups if g not in touching] + [sorted(merged, key=scenarios.index)]
# Seconds each scenario took in two lanes (2026-12-01 13:36-14:12, before the single-host scenarios
# had containers of their own, all scenarios through the pipelining podman connection of
# molecule/plugins): the lanes' balance.
SECONDS = {"postgresql": 140, "mongodb": 258, "db_monitoring": 217, "db_backup": 293, "e2e": 352,
           "backup_repo": 790, "cluster": 1136, "demo": 413}
weight = lambda g: sum(SECONDS.get(s, 150 * len(hosts[s])) for s in g)
lanes = [[], []]
for g in sorted(groups, key=weight, reverse=True):
    min(lanes, key=lambda lane: sum(weight([s]) for s in lane)).extend(g)
for i, lane in enumerate(lanes):
    print(i + 1, *sorted(lane, key=scenarios.index))
PY
)"
run_lane() {  # lane number, scenarios...
  local lane=$1 scenario start result status=0
  shift
  for scenario in "$@"; do
    start=$(date +%s)
    if run_one "$scenario" >"$logs/$scenario.log" 2>&1; then result=passed; else result=FAILED; status=1; fi
    {
      flock 9
      echo "===== molecule_all: lane $lane, scenario $scenario: output ($logs/$scenario.log) ====="
      cat "$logs/$scenario.log"
      echo "molecule_all: scenario $scenario $result in $(( $(date +%s) - start )) s (lane $lane)"
      echo "molecule_all: scenario $scenario $result in $(( $(date +%s) - start )) s (lane $lane)" >>"$logs/summary"
    } 9>>"$logs/print.lock"
  done
  return "$status"
}
pids=()
while read -r lane names; do
  [ -n "$names" ] || continue
  echo "molecule_all: lane $lane: $names"
  # shellcheck disable=SC2086  # scenario names are words
  run_lane "$lane" $names &
  pids+=($!)
done <<<"$assignment"
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
echo "molecule_all: summary"
cat "$logs/summary"
exit "$status"
