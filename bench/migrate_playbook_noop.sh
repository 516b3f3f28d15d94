#!/usr/bin/env bash
# migrate.yml with nothing to do: 10 migration files against 700 (goal: the 700 run costs at most
# 1.3x the 10 run), on a demo host.
#
#   bench/migrate_playbook_noop.sh          # DBOPS_BENCH_ROUNDS=3 by default
#
# Starts and converges a demo container of its own (scripts/demo.sh with DBOPS_DEMO_CONTAINER,
# default dbops-demo-migspeed; reused when it exists), writes two migration sets from
# bench/migration_generator.py (5 and 350 realistic versions, each with its undo file: 10 and 700
# files), applies each once to a database of its own with pg_migrate, then runs migrate.yml for one
# database at a time, alternating the two sets. Every measured run must report changed=0
# on the host, or the bench stops. Prints each run's wall time and the planning pg_migrate task's
# time (profile_tasks), then the ratios. Remove the container with
# DBOPS_DEMO_CONTAINER=dbops-demo-migspeed bash scripts/demo.sh clean.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export DBOPS_DEMO_CONTAINER="${DBOPS_DEMO_CONTAINER:-dbops-demo-migspeed}"
rounds="${DBOPS_BENCH_ROUNDS:-3}"
name="$DBOPS_DEMO_CONTAINER"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/molecule/containers.conf}"

if ! podman container exists "$name" \
    || [ "$(podman container inspect --format '{{.State.Running}}' "$name")" != true ]; then
  bash scripts/demo.sh >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$here/.venv/bin/python" - "$work" <<'PY'
import json
import sys
from pathlib import Path

from bench.migration_generator import realistic

work = Path(sys.argv[1])
for versions in (5, 350):
    files = 2 * versions
    directory = work / f"m{files}"
    directory.mkdir()
    for i, (up, down) in enumerate(realistic(versions), 1):
        (directory / f"V{i:04d}__step_{i}.sql").write_text(up)
        (directory / f"U{i:04d}__step_{i}.sql").write_text(down)
    (work / f"vars{files}.json").write_text(json.dumps({"dbops_pg_migrations": [
        {"database": f"bench{files}", "path": str(directory), "session_role": ""}]}))
PY

export PATH="$here/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$here/.build/collections" ANSIBLE_LOCAL_TEMP="$here/.cache/ansible/tmp"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_PIPELINING=true
export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks
playbook() {
  ansible-playbook -i inventories/local --vault-id local@inventories/local/vault-password \
    -e "@$work/vars$1.json" dbops.datastores.migrate
}

for files in 10 700; do
  podman exec "$name" su postgres -c "psql -XAtc \"SELECT 1 FROM pg_database WHERE datname = 'bench$files'\"" \
    | grep -q 1 || podman exec "$name" su postgres -c "createdb bench$files"
  # Applied once with the module itself: migrate.yml would first back the database up, and the
  # demo host has no backup job for it (a run with nothing to change backs nothing up).
  ansible -i inventories/local --vault-id local@inventories/local/vault-password postgresql -b \
    --become-user postgres -m dbops.datastores.pg_migrate -a "{\"login_db\": \"bench$files\", \
    \"src\": \"$work/m$files\", \"login_unix_socket\": \"/var/run/postgresql\", \"login_user\": \"postgres\"}" \
    >"$work/apply$files.log" || { tail -20 "$work/apply$files.log" >&2; exit 1; }
done
applied="$(podman exec "$name" su postgres -c \
  "psql -XAtd bench700 -c 'SELECT count(*) FROM dbops_schema_history WHERE success'")"
[ "$applied" = 350 ] || { echo "bench700 holds $applied applied versions, not 350" >&2; exit 1; }

declare -A wall
for round in $(seq 1 "$rounds"); do
  for files in 10 700; do
    started=$(date +%s%N)
    playbook "$files" >"$work/run.log" || { tail -30 "$work/run.log" >&2; exit 1; }
    took=$(awk -v a="$started" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    recap="$(grep -E "^dbops-demo +: ok=" "$work/run.log")"  # the inventory's host name
    case "$recap" in
      *" changed=0 "*) ;;
      *) echo "round $round, $files files: not a no-op: $recap" >&2; exit 1 ;;
    esac
    # profile_tasks' line of the planning pg_migrate task (check mode), the one that reads the files
    step="$(grep -E 'Run pg_migrate in check mode' "$work/run.log" | grep -oE '[0-9]+\.[0-9]+s$' | head -1 | tr -d s || true)"
    printf 'round %s, %3s files: whole playbook %6s s, plan task %s s, %s, load %s\n' \
      "$round" "$files" "$took" "${step:-?}" "${recap##*: }" "$(cut -d' ' -f1 /proc/loadavg)"
    wall[$round,$files]=$took
  done
  echo "round $round: 700 / 10 files, whole playbook" \
    "$(awk -v a="${wall[$round,700]}" -v b="${wall[$round,10]}" 'BEGIN { printf "%.2f", a / b }')x"
done
