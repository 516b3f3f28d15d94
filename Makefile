# dbops.datastores — developer and CI entry points. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
BIN := $(CURDIR)/.venv/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.build/collections
export ANSIBLE_NOCOLOR := 1
export NO_COLOR := 1
PYTEST_ARGS ?=
## pytest-xdist workers for the integration targets (each worker starts its own servers; 0 = none).
PYTEST_WORKERS ?= 2

.PHONY: demo demo-clean demo-test molecule-and-demo static setup setup-pg integration-matrix integration-all-majors lint ruff ansible-lint argument-specs changelog-lint docs-check docs-lint alert-rules docs build ee-check sanity unit integration molecule test bench

## The demo: install, start the container dbops-demo, run site.yml and migrate.yml against
## inventories/local, print the status. Again: 0 changed. demo-clean removes the container.
demo:
	bash scripts/demo.sh

demo-clean:
	bash scripts/demo.sh clean

## The demo from a new container, twice: fails unless the second run reports changed=0.
demo-test: setup
	bash scripts/demo.sh test

## Install everything (Debian packages, venv, collection link, test image); idempotent.
setup:
	bash scripts/setup.sh

## PostgreSQL servers 12-18 and the client tools of 18 under .cache/pg (pinned, cached; 15 is Debian's).
setup-pg: setup
	bash scripts/setup_pg_majors.sh

## Static checks: ruff, ansible-lint (production profile), changelog fragments, module docs
## (ansible-doc and antsibull-docs), alert rules (promtool), build.
lint: setup ruff ansible-lint argument-specs changelog-lint docs-check docs-lint alert-rules build ee-check

ruff:
	ruff check .

ansible-lint:
	@# A home of its own: ansible-lint installs the collection there, where it must not shadow other checkouts.
	ANSIBLE_HOME=$(CURDIR)/.cache/ansible-home ANSIBLE_VAULT_IDENTITY_LIST=local@inventories/local/vault-password ansible-lint --nocolor

## Every role's meta/argument_specs.yml agrees with its defaults/main.yml.
argument-specs:
	python scripts/check_argument_specs.py roles

changelog-lint:
	antsibull-changelog lint

## Every module's documentation renders with ansible-doc.
## One ansible-doc process for all of them (one per module cost ~1.5 s each): it fails naming the
## module whose documentation does not parse; the count catches a module it cannot find.
docs-check:
	@mods=$$(for m in plugins/modules/*.py; do echo dbops.datastores.$$(basename $$m .py); done); \
	n=$$(ansible-doc -t module $$mods | grep -c '^> MODULE '); \
	[ "$$n" = "$$(ls plugins/modules/*.py | wc -l)" ] || { echo "ansible-doc rendered $$n of $$(ls plugins/modules/*.py | wc -l) modules"; exit 1; }; \
	echo "ansible-doc renders $$n modules"

## antsibull-docs on the release artefact: lint-collection-docs, and every plugin/role doc passes
## the docsite schema and renders (collection --fail-on-error).
docs-lint:
	bash scripts/docs_lint.sh

## The shipped Prometheus alert rules: promtool check rules + promtool test rules (tests/alerts/).
alert-rules:
	bash scripts/check_alert_rules.sh

## The collection's HTML documentation site (antsibull-docs + Sphinx, offline) in .build/docs.
docs: setup
	bash scripts/build_docs.sh

## The release artefact builds and carries no tests, inventories or molecule files.
build:
	rm -rf .build/dist && mkdir -p .build/dist
	ansible-galaxy collection build --output-path .build/dist --force . > /dev/null
	@tar -tzf .build/dist/dbops-datastores-*.tar.gz > .build/dist/contents.txt
	@if grep -E '^(tests|molecule|inventories|bench|\.venv|\.build)/' .build/dist/contents.txt; then \
	  echo "the artefact contains files it must not"; exit 1; fi
	@echo "built $$(ls .build/dist/*.tar.gz) ($$(wc -l < .build/dist/contents.txt) entries)"

## The AWX execution environment definition is valid (ansible-builder writes its build context).
ee-check:
	rm -rf .build/ee && ansible-builder create -f execution-environment.yml -c .build/ee > /dev/null
	@echo "execution-environment.yml: build context written to .build/ee"

## ansible-test sanity on a copy of the collection under ansible_collections/dbops/datastores.
sanity: setup
	bash scripts/sanity.sh

## Unit tests: pure logic, no server.
unit: setup
	pytest tests/unit -q $(PYTEST_ARGS)

## Integration tests: modules and playbooks through ansible-playbook against real servers.
integration: setup setup-pg
	pytest tests/integration -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

## The version-sensitive tests (marker pg_matrix: connection, migrate, backup round trip, health,
## db_monitoring grants) on every supported major other than 15, which `integration` covers.
PG_MATRIX_VERSIONS ?= 13,14,16,17,18
integration-matrix: setup setup-pg
	DBOPS_TEST_PG_VERSIONS=$(PG_MATRIX_VERSIONS) pytest tests/integration -q -n $(PYTEST_WORKERS) -m pg_matrix $(PYTEST_ARGS)

## Every integration test on every supported major (13-18): long, not part of `make test`.
integration-all-majors: setup setup-pg
	DBOPS_TEST_PG_VERSIONS=all pytest tests/integration -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

## Molecule: one scenario per role on podman with systemd (scripts/molecule_all.sh [scenario...]).
molecule: setup
	bash scripts/molecule_all.sh

## Molecule lanes: 2 runs the scenarios (and, in molecule-and-demo, the demo test) in two lanes at
## once; scenarios that share a container name share a lane (scripts/molecule_all.sh).
MOLECULE_LANES ?= 2

## Every Molecule scenario and `make demo-test`, in $(MOLECULE_LANES) lanes; the output of each in one
## piece when it ends, then a summary of the times. Fails if any of them fails.
molecule-and-demo: setup
	DBOPS_MOLECULE_LANES=$(MOLECULE_LANES) DBOPS_MOLECULE_DEMO=1 bash scripts/molecule_all.sh

## The checks that need no server (lint, sanity, unit), two at a time, each target's output kept
## together (--output-sync); -k given to `make test` reaches this make too.
STATIC_JOBS ?= 2
static: setup
	$(MAKE) --no-print-directory --output-sync=target -j$(STATIC_JOBS) lint sanity unit

## The full suite. CI runs exactly this. The server tests run one target at a time (each
## fills both cores itself); see docs/development.md for what runs where and its cost.
test: setup static integration integration-matrix molecule-and-demo

## Benchmarks (after make setup): install the peer tools (pinned, idempotent; scripts/bench_peers.sh), then compare
## pg_migrate with them (see docs/benchmarks.md).
bench:
	env $$(bash scripts/bench_peers.sh) .venv/bin/python -m bench.pg_migrate_bench
