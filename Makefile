# Developer entry points. `make test` on a fresh clone does everything needed:
# system GL libraries (when root), the .venv virtualenv, the editable install.
# The set-up logic lives in .ci/setup.sh, which is idempotent and fast when
# nothing changed, so every target can depend on it.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
LINT_PATHS := __init__.py __main__.py robot hw skills planners sim_tests

.PHONY: help setup demo test bench lint clean

help:
	@echo "make setup  - install GL libraries (if root), create $(VENV), pip install -e '.[dev]'"
	@echo "make demo   - run the skillstack demo"
	@echo "make test   - run the simulation test-suite (sim_tests)"
	@echo "make bench  - control-loop benchmark, JSON on stdout"
	@echo "make lint   - ruff check and ruff format --check"
	@echo "make clean  - remove $(VENV) and caches"

setup:
	@VENV="$(VENV)" bash .ci/setup.sh

demo: setup
	$(VENV)/bin/skillstack demo

# pytest exits 5 when it collected nothing; that must fail loudly, never pass.
test: setup
	@status=0; $(PY) -m pytest sim_tests -q || status=$$?; \
	if [ $$status -eq 5 ]; then \
		echo "make test: FAILED - pytest collected no tests from sim_tests/ (exit 5)" >&2; \
		exit 1; \
	fi; \
	exit $$status

bench: setup
	$(VENV)/bin/skillstack bench control --json

lint: setup
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache *.egg-info
	find $(LINT_PATHS) assets -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
