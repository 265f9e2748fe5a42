# Developer entry points. `make test` on a fresh clone does everything needed:
# system GL libraries (when root), the .venv virtualenv, the editable install.
# The set-up logic lives in .ci/setup.sh, which is idempotent and fast when
# nothing changed, so every target can depend on it.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
LINT_PATHS := __init__.py __main__.py robot hw skills planners sim_tests

.PHONY: help setup demo test bench lint typecheck clean

help:
	@echo "make setup  - install GL libraries (if root), create $(VENV), pip install -e '.[dev]'"
	@echo "make demo   - run the skillstack demo"
	@echo "make test   - run the simulation test-suite (sim_tests), then make lint"
	@echo "make bench  - control-loop benchmark, JSON on stdout"
	@echo "make lint   - ruff check (docstrings included), ruff format --check, mypy"
	@echo "make typecheck - mypy over the skillstack packages"
	@echo "make clean  - remove $(VENV) and caches"

setup:
	@VENV="$(VENV)" bash .ci/setup.sh

demo: setup
	$(VENV)/bin/skillstack demo

# pytest exits 5 when it collected nothing; that must fail loudly, never pass.
# The lint gates run after the tests, whatever the tests' outcome, so one run shows both.
test: setup
	@status=0; $(PY) -m pytest sim_tests -q || status=$$?; \
	if [ $$status -eq 5 ]; then \
		echo "make test: FAILED - pytest collected no tests from sim_tests/ (exit 5)" >&2; \
		status=1; \
	fi; \
	$(MAKE) --no-print-directory lint || status=$$((status ? status : 1)); \
	exit $$status

bench: setup
	$(VENV)/bin/skillstack bench control --json

lint: setup
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	@$(MAKE) --no-print-directory typecheck

# The repository root is the `skillstack` package (pyproject's package-dir); mypy finds it
# through a link of that name in a scratch folder.
TYPECHECK_DIR := .typecheck
typecheck: setup
	@mkdir -p $(TYPECHECK_DIR) && ln -sfn "$(CURDIR)" $(TYPECHECK_DIR)/skillstack
	MYPYPATH=$(TYPECHECK_DIR) $(VENV)/bin/mypy --config-file pyproject.toml -p skillstack

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache .mypy_cache .typecheck *.egg-info
	find $(LINT_PATHS) assets -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
