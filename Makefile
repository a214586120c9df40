# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint format bench bench-gates bench-load bench-activation docs report ensure-chromium clean env lock bench-identity bench-pipeline

env: $(INSTALLED)

$(INSTALLED): requirements.lock pyproject.toml
	@echo "==> creating the Python environment in $(VENV) (pinned by requirements.lock)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	UV_COMPILE_BYTECODE=1 $(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/python -m journeyflow.cli demo $(DEMO_ARGS)

test: $(INSTALLED) ensure-chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The journey report's browser test drives Debian's chromium; install it once (as root, as CI runs).
ensure-chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "==> installing chromium (Debian package) for the report's browser test"; \
		apt-get install -y --no-install-recommends chromium >/dev/null || \
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }; }

bench-load: $(INSTALLED)
	$(BIN)/python tests/benchmarks/bench_load.py $(if $(N),--rows $(N)) $(BENCH_ARGS)

bench-activation: $(INSTALLED)
	$(BIN)/python -m tests.benchmarks.bench_activation $(BENCH_ARGS)

# Identity resolution in the warehouse against an in-memory union-find (N identifiers).
bench-identity: $(INSTALLED)
	$(BIN)/python tests/benchmarks/bench_identity.py --identifiers $(or $(N),1000000)

# The whole DAG on N generated touchpoints (default 10,000,000), then incrementally on 1 % more.
bench-pipeline: $(INSTALLED)
	$(BIN)/python tests/benchmarks/bench_pipeline.py --touchpoints $(or $(N),10000000) $(BENCH_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check dags plugins tests
	$(BIN)/ruff format --check dags plugins tests

format: $(INSTALLED)
	$(BIN)/ruff format dags plugins tests
	$(BIN)/ruff check --fix dags plugins tests

lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf .airflow .demo dbt_project/target dbt_project/logs

bench-gates: $(INSTALLED)
	$(BIN)/python tests/benchmarks/bench_gates.py $(BENCH_ARGS)

docs: $(INSTALLED)
	$(BIN)/python -m journeyflow.cli docs

report: $(INSTALLED)
	$(BIN)/python -m journeyflow.cli report $(REPORT_ARGS)
