# airflow-mlops: `make run` starts the demo, `make test` runs every test. `make help` lists all.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
LOCK_HASH := $(shell sha256sum requirements.lock | cut -c1-16)
STAMP := $(VENV)/.installed-$(LOCK_HASH)
DAYS ?= 14
PROFILE ?= embedded
PYTEST_ARGS ?=

.PHONY: help venv system lock run demo-drift stop source test lint format test-dags test-unit test-e2e feast lineage reproduce bench calibrate bench-page bench-profile clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

venv: $(STAMP) ## build .venv from requirements.lock (only when missing or stale)

$(STAMP): requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (set PYTHON=...)")'
	rm -f $(VENV)/.installed-*
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync -q --python $(PY) --require-hashes --compile-bytecode requirements.lock
	touch $@

system: ## the Debian packages the tests need (PostgreSQL server, chromium), installed when missing
	scripts/system_packages.sh

lock: ## re-resolve requirements.txt into requirements.lock (hashes, no index URL)
	$(VENV)/bin/uv pip compile requirements.txt -o requirements.lock --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes --no-header --quiet

source: venv ## build the demo source database (or keep it when up to date)
	PYTHONPATH=$(CURDIR) $(PY) -m include.source.demo ensure

run: venv ## start Airflow and bring the demo to a state worth looking at (DAYS=14; PROFILE=server: PostgreSQL, Redis, S3, Celery)
	@case "$(PROFILE)" in \
	  embedded) DEMO_DAYS=$(DAYS) scripts/run.sh ;; \
	  server) DEMO_DAYS=$(DAYS) scripts/run_server.sh ;; \
	  *) echo "PROFILE=$(PROFILE): choose embedded (default) or server" >&2; exit 2 ;; \
	esac

demo-drift: venv ## the closed loop on Dec 2013 (stops make run; own state): monitoring -> retraining -> gate
	scripts/stop.sh
	AIRFLOW_HOME=$(CURDIR)/.airflow-drift MLOPS_DATA_DIR=$(CURDIR)/data/demo-drift \
	  MLOPS_REPLAY_ANCHOR=2013-12-16 DEMO_DAYS=42 DEMO_SCRIPT=scripts/demo_drift.py scripts/run.sh

stop: ## stop Airflow (make run's of both profiles, make demo-drift's); leaves no process of the project behind
	scripts/stop.sh
	AIRFLOW_HOME=$(CURDIR)/.airflow-drift scripts/stop.sh
	AIRFLOW_HOME=$(CURDIR)/.airflow-server scripts/stop.sh

test: venv system lint ## every test (what CI runs): lint, DAG integrity and layers, unit, end to end
	PYTHONPATH=$(CURDIR) $(PY) -m pytest tests $(PYTEST_ARGS)

lint: venv ## ruff (with Airflow's AIR rules), format check, mypy on include/, dags/, plugins/
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PYTHONPATH=$(CURDIR) $(VENV)/bin/mypy

format: venv ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test-dags: venv ## DAG integrity and import-layer tests only
	PYTHONPATH=$(CURDIR) $(PY) -m pytest tests/dags $(PYTEST_ARGS)

test-unit: venv ## unit tests only
	PYTHONPATH=$(CURDIR) $(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-e2e: venv system ## end-to-end tests only (Airflow, real servers, the browser)
	PYTHONPATH=$(CURDIR) $(PY) -m pytest tests/e2e $(PYTEST_ARGS)

feast: venv ## the Feast CLI on the project's repo, e.g. make feast ARGS="feature-views list"
	MLOPS_DATA_DIR=$${MLOPS_DATA_DIR:-$(CURDIR)/data} PYTHONPATH=$(CURDIR) FEAST_USAGE=False \
	  $(VENV)/bin/feast -c include/features/feature_repo $(ARGS)

lineage: venv ## where a model version came from: make lineage VERSION=n (a tree, and a page with the graph)
	@test -n "$(VERSION)" || { echo "make lineage VERSION=n (a registered version of the model)" >&2; exit 2; }
	@home=$${AIRFLOW_HOME:-.airflow}; if [ -f "$$home/env.sh" ]; then . "$$home/env.sh"; fi; \
	  PYTHONPATH=$(CURDIR) $(PY) -m include.oncall.lineage $(VERSION)

reproduce: venv ## rebuild a model version from its lineage and compare: make reproduce VERSION=n (exit 0: identical)
	@test -n "$(VERSION)" || { echo "make reproduce VERSION=n (a registered version of the model)" >&2; exit 2; }
	@home=$${AIRFLOW_HOME:-.airflow}; if [ -f "$$home/env.sh" ]; then . "$$home/env.sh"; fi; \
	  PYTHONPATH=$(CURDIR) $(PY) -m include.training.reproduce $(VERSION)

bench: venv ## benchmarks (ingest, validation, features, training/serving, monitoring): figures to benchmarks/results/
	PYTHONPATH=$(CURDIR) $(PY) benchmarks/bench_ingest.py
	PYTHONPATH=$(CURDIR) $(PY) benchmarks/bench_validation.py
	PYTHONPATH=$(CURDIR) $(PY) benchmarks/bench_features.py
	PYTHONPATH=$(CURDIR) $(PY) benchmarks/bench_serving.py
	PYTHONPATH=$(CURDIR) $(PY) benchmarks/bench_monitoring.py

calibrate: venv ## replay 2013 to calibrate monitoring's thresholds (drift; attribution, fairness, the gate's fairness tolerance)
	PYTHONPATH=$(CURDIR) $(PY) benchmarks/drift_calibration.py
	PYTHONPATH=$(CURDIR) $(PY) benchmarks/attribution_calibration.py

bench-page: venv ## load time of the Model health page, median of 20 (needs `make run`)
	. .airflow/env.sh && PYTHONPATH=$(CURDIR) $(PY) benchmarks/bench_model_health.py

bench-profile: venv ## task overhead, train_model wall, idle memory of the running profile (needs make run; PROFILE=server)
	@case "$(PROFILE)" in \
	  embedded) PYTHONPATH=$(CURDIR) $(PY) benchmarks/bench_profile.py --home $(CURDIR)/.airflow ;; \
	  server) PYTHONPATH=$(CURDIR) $(PY) benchmarks/bench_profile.py --home $${AIRFLOW_HOME:-$(CURDIR)/.airflow-server} ;; \
	  *) echo "PROFILE is embedded or server" >&2; exit 2 ;; \
	esac

clean: stop ## remove local state (Airflow home, data, caches); keeps .venv
	rm -rf .airflow .airflow-drift .airflow-server data .cache .pytest_cache .ruff_cache
