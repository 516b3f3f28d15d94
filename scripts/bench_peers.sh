#!/usr/bin/env bash
# Install the peer migration tools bench/pg_migrate_bench.py compares pg_migrate with, pinned and
# idempotently (a second run only checks):
#   dbmate           npm package dbmate@2.36.0, whose @dbmate/linux-x64 dependency ships the Go
#                    binary; installed under .cache/bench-peers/npm, the binary is run directly
#   yoyo-migrations  PyPI 9.0.0 in its own venv .cache/bench-peers/yoyo (not in the project venv)
#   sqitch           Debian sqitch + libdbd-pg-perl (bookworm: sqitch 1.3.1)
# Prints the environment variables the bench reads (DBOPS_BENCH_DBMATE, DBOPS_BENCH_YOYO).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
log() { printf '[bench-peers] %s\n' "$*" >&2; }
DBMATE_VERSION=2.36.0
YOYO_VERSION=9.0.0
peers="$repo/.cache/bench-peers"
mkdir -p "$peers"

dbmate="$peers/npm/node_modules/@dbmate/linux-x64/bin/dbmate"
if [ ! -x "$dbmate" ] || [ "$("$dbmate" --version 2>/dev/null | awk '{print $NF}')" != "$DBMATE_VERSION" ]; then
  log "installing dbmate $DBMATE_VERSION from npm"
  npm install --silent --no-audit --no-fund --prefix "$peers/npm" "dbmate@$DBMATE_VERSION" >&2
fi

yoyo="$peers/yoyo/bin/yoyo"
installed=$("$peers/yoyo/bin/pip" show yoyo-migrations 2>/dev/null || true)
if [ ! -x "$yoyo" ] || ! grep -qx "Version: $YOYO_VERSION" <<<"$installed"; then
  log "installing yoyo-migrations $YOYO_VERSION from PyPI"
  python3 -m venv "$peers/yoyo"
  "$peers/yoyo/bin/pip" install -q "yoyo-migrations==$YOYO_VERSION" "psycopg2-binary==2.9.13" >&2
fi

missing=()
for pkg in sqitch libdbd-pg-perl; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  flock /tmp/dbops-apt.lock "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive flock /tmp/dbops-apt.lock "${sudo_cmd[@]}" \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
log "dbmate $("$dbmate" --version | awk '{print $NF}'), yoyo $YOYO_VERSION, $(sqitch --version)"
echo "DBOPS_BENCH_DBMATE=$dbmate"
echo "DBOPS_BENCH_YOYO=$yoyo"
