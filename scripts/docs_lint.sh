#!/usr/bin/env bash
# Collection docs as antsibull-docs sees them, on the release artefact (what ships):
#   1. antsibull-docs lint-collection-docs (docs config, links, extra docs, references);
#   2. antsibull-docs collection --fail-on-error: every module/filter/role doc passes the docsite
#      schema (option types, markup) and renders to RST.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
out=.build/docs-lint
rm -rf "$out" && mkdir -p "$out/dist" "$out/collections/ansible_collections/dbops/datastores"
ansible-galaxy collection build --output-path "$out/dist" --force . > /dev/null
tar -xzf "$out"/dist/dbops-datastores-*.tar.gz -C "$out/collections/ansible_collections/dbops/datastores"
export ANSIBLE_COLLECTIONS_PATH="$repo/$out/collections"
antsibull-docs lint-collection-docs --plugin-docs --validate-collection-refs self \
  "$out/collections/ansible_collections/dbops/datastores"
mkdir -p "$out/rst" && chmod 0755 "$out/rst"
antsibull-docs collection --use-current --fail-on-error --dest-dir "$out/rst" dbops.datastores > "$out/collection.log" || {
  cat "$out/collection.log"; exit 1; }
echo "antsibull-docs: $(find "$out/rst" -name '*.rst' | wc -l) RST pages, no errors"
