#!/usr/bin/env bash
# Run `ansible-test sanity` on this checkout. ansible-test needs the collection to sit at
# .../ansible_collections/dbops/datastores, so the tracked (and new, not ignored) files are copied
# there first. ansible-test builds its own pinned tool venvs once (--venv) and reuses them.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv="$repo/.venv"
dest="$repo/.build/sanity/ansible_collections/dbops/datastores"
rm -rf "$dest"
mkdir -p "$dest"
cd "$repo"
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -C "$dest" -xf -
cd "$dest"
# ansible-test wants a git repo to list files; a fresh one of the copied tree is enough.
git init -q . && git add -A && git -c user.name=sanity -c user.email=sanity@localhost commit -qm sanity
export PATH="$venv/bin:$PATH"

# ansible-test bootstraps pip into each tool venv with a get-pip.py that it downloads from a host
# our machines cannot reach. Give it an equivalent from PyPI instead: the pinned pip wheel, run
# in place (what get-pip.py itself does).
pip_version=$(python -c 'import re, ansible_test._internal.python_requirements as r, inspect; print(re.search(r"pip=.([0-9.]+).", inspect.getsource(r)).group(1))')
cache="$HOME/.ansible/test/cache"
bootstrap="$cache/get_pip_${pip_version//./_}.py"
if [ ! -f "$bootstrap" ]; then
  mkdir -p "$cache"
  pip download -q --no-deps --only-binary=:all: -d "$cache" "pip==$pip_version"
  cat > "$bootstrap.tmp" <<PY
"""Offline stand-in for get-pip.py (written by dbops.datastores scripts/sanity.sh)."""
import sys
sys.path.insert(0, "$cache/pip-$pip_version-py3-none-any.whl")
from pip._internal.cli.main import main
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(main(["install", *args]))
PY
  mv "$bootstrap.tmp" "$bootstrap"
fi
exec ansible-test sanity --venv --python 3.11 --color no "$@"
