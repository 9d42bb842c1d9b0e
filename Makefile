# A menu of verbs over configured tools. Every target works from a fresh clone:
# the virtual environment is built on demand from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install fmt lint typecheck test check emulator demo bench soak mutate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $(STAMP)

install: $(STAMP)

fmt: $(STAMP)
	$(BIN)/ruff format provisioner tests benchmarks scripts
	$(BIN)/ruff check --fix provisioner tests benchmarks scripts

lint: $(STAMP)
	$(BIN)/ruff check provisioner tests benchmarks scripts

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
	$(BIN)/python benchmarks/bench_orgs.py
	$(BIN)/python benchmarks/bench_export.py

soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py
	$(BIN)/python benchmarks/soak.py --orgs 3

# Mutation testing of the pure modules ([tool.mutmut] in pyproject.toml), then the
# figure per module and the survivors. Not CI, not `check`: about half an hour on two
# cores. MODULE narrows it (make mutate MODULE=provisioner.intake.mac); mutmut keeps
# its results in mutants/ and retries only what changed.
MODULE ?=
MUTATE_JOBS ?= 1
mutate: $(STAMP)
	@# mutmut copies the package's data files (the catalogue) only once: refresh them.
	@if [ -d mutants/provisioner ]; then cd provisioner && find . -type f ! -name '*.py' \
		! -path '*__pycache__*' -exec install -D -m 644 {} ../mutants/provisioner/{} \; ; fi
	$(BIN)/mutmut run --max-children $(MUTATE_JOBS) $(if $(MODULE),"$(MODULE).*")
	$(BIN)/python scripts/mutation_report.py $(MODULE)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info mutants
