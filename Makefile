# One command to run, one to test. Each installs what it needs first.
#   make run    Azurite (in memory) + the local Functions runner on http://localhost:7071
#   make test   ruff, mypy, the whole pytest suite (Azurite is started by the tests), Bicep checks
#   make bench  throughput and cost figures (prints; never fails on a time)
#   .venv/bin/dpctl  the operator CLI (installed by every target above)
#   make catalog  after adding an event type: infra/catalog.json and the docs' tables
#   make infracheck     the offline Bicep checks alone (compiler and ARM rules, SDK models)
#   make verify-deploy  after `azd up`: checks the deployment in Azure with your `az login`
#   make contract-tt02  the Altinn contract suite against TT02, read-only (docs/cli.md: "The contract suite against TT02")

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
STAMPS := .make

.PHONY: install run test lint typecheck bench catalog clean infracheck verify-deploy contract-tt02

install: $(STAMPS)/venv $(STAMPS)/npm local.settings.json

# Order-only: written once from the committed example, never over your own edits.
local.settings.json: | local.settings.example.json
	cp local.settings.example.json $@

$(STAMPS)/venv: requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version.split()[0]}"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .   # the operator CLI: .venv/bin/dpctl
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/npm: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/checkov: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@mkdir -p $(STAMPS) && touch $@

run: install
	$(PY) -m devtools.dev $(ARGS)

lint: $(STAMPS)/venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMPS)/venv
	$(VENV)/bin/mypy

test: install $(STAMPS)/checkov lint typecheck
	$(PY) -m devtools.export_catalog --check
	$(PY) -m devtools.checks.infra
	$(VENV)/bin/pytest $(PYTEST_ARGS)

infracheck: $(STAMPS)/venv
	$(PY) -m devtools.checks.infra

verify-deploy: $(STAMPS)/venv
	$(PY) -m devtools.verify_deploy $(ARGS)

# The contract suite's read-only part against TT02; skipped (exit 0) without the Maskinporten settings.
contract-tt02: $(STAMPS)/venv
	$(VENV)/bin/pytest tests/integration/devtools/altinn_sim/test_contract.py -k tt02 -p no:cacheprovider

bench: install
	$(PY) -m devtools.bench $(ARGS)

# After a change to shared/catalog.py: the queues Bicep creates and the docs' tables.
catalog: $(STAMPS)/venv
	$(PY) -m devtools.export_catalog
	$(PY) -m devtools.docs

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules $(STAMPS) .pytest_cache .mypy_cache .ruff_cache .hypothesis
