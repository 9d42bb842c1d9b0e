# A menu of verbs over configured tools. Every target works from a fresh clone:
# the virtual environment is built on demand from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install fmt lint typecheck test check emulator demo bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $(STAMP)

install: $(STAMP)

fmt: $(STAMP)
	$(BIN)/ruff format provisioner tests benchmarks
	$(BIN)/ruff check --fix provisioner tests benchmarks

lint: $(STAMP)
	$(BIN)/ruff check provisioner tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP)
	$(BIN)/python -m pytest -q

check: lint typecheck test

emulator: $(STAMP)
	$(BIN)/python -m provisioner.emulator

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
