#!/usr/bin/env bash
# The collection's HTML documentation site, as collections on the Ansible docs site build it:
# antsibull-docs writes RST for the modules, the filter and the roles' argument specs, the guides
# of docs/ are added as pages (docs/docsite/extra-docs.yml), and Sphinx with the Ansible theme
# builds .build/docs/build/html. Offline: no intersphinx inventories are fetched.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
out=.build/docs
rm -rf "$out" && mkdir -p "$out" && chmod 0755 "$out"
# The release artefact (what ships), as its own collections root.
mkdir -p "$out/collections/ansible_collections/dbops/datastores" "$out/dist"
ansible-galaxy collection build --output-path "$out/dist" --force . > /dev/null
tar -xzf "$out"/dist/dbops-datastores-*.tar.gz -C "$out/collections/ansible_collections/dbops/datastores"
export ANSIBLE_COLLECTIONS_PATH="$repo/$out/collections"
antsibull-docs sphinx-init --use-current --fail-on-error --lenient --squash-hierarchy \
  --dest-dir "$out" dbops.datastores > /dev/null
# Offline: intersphinx would download the Ansible docs' inventory.
sed -i 's/^intersphinx_mapping = .*/intersphinx_mapping = {}/' "$out/conf.py"
python - "$out/conf.py" <<'PY'
import re
import sys

path = sys.argv[1]
text = open(path, encoding="utf-8").read()
text = re.sub(r"intersphinx_mapping\s*=\s*\{.*?\n\}", "intersphinx_mapping = {}", text, flags=re.S)
open(path, "w", encoding="utf-8").write(text)
PY
# build.sh of sphinx-init, with the guides of docs/ (Markdown, through myst-parser) added between
# the RST generation and the Sphinx build.
mkdir -p "$out/rst" && chmod 0755 "$out/rst"
antsibull-docs --config-file "$out/antsibull-docs.cfg" collection --cleanup everything --fail-on-error \
  --use-current --squash-hierarchy --dest-dir "$out/rst" dbops.datastores > /dev/null
mkdir -p "$out/rst/guides"
cp docs/*.md "$out/rst/guides/"
{
  printf '\n.. toctree::\n   :maxdepth: 1\n   :caption: Guides\n\n'
  for guide in docs/*.md; do printf '   guides/%s\n' "$(basename "$guide" .md)"; done
} >> "$out/rst/index.rst"
sed -i "s/^extensions = \[\(.*\)\]/extensions = [\1, 'myst_parser']/" "$out/conf.py"
printf "\nmyst_heading_anchors = 3\nsuppress_warnings = ['myst.xref_missing']\n" >> "$out/conf.py"
sphinx-build -M html "$out/rst" "$out/build" -c "$out" -q
echo "documentation site: $out/build/html/index.html"
