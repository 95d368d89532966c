# `make run` and `make test` are the two commands in the README; the rest are helpers.
# Without DATABASE_URL / REDIS_URL both use the embedded servers under var/.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed-stamp
EMBEDDED := $(PY) -m embedded_servers exec --
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

.PHONY: run serve test drills lint format migrate shell bench embedded-down clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[embedded,test]'
	touch $(STAMP)

## run: migrate, seed demo data, then web + worker + beat + a demo agent (Ctrl-C stops everything)
run: $(STAMP)
	$(EMBEDDED) $(MAKE) --no-print-directory serve

# Runs inside `make run`, with the database and Redis URLs set. Web, worker and beat write
# their metrics to one directory, emptied first, so the web's /metrics shows all three
# (prometheus_client's multiprocess mode; docs/operations.md).
METRICS_DIR := $(CURDIR)/var/prometheus
serve:
	rm -rf $(METRICS_DIR) && mkdir -p $(METRICS_DIR)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py maintain_audit_partitions
	$(PY) manage.py maintain_trace_partitions
	$(PY) manage.py seed_demo --agent-token-file var/demo-agent.token
	@echo ""
	@echo "  Sergas is starting at http://$(HOST):$(PORT)/  (the dashboard; admin: http://$(HOST):$(PORT)/admin/)"
	@echo "  Health: http://$(HOST):$(PORT)/readyz   Metrics (web, worker, beat): http://$(HOST):$(PORT)/metrics"
	@echo "  A demo agent (docs/agent_worker.py) takes the work of the demo-agents queue."
	@echo "  Press Ctrl-C to stop web, worker, beat, the agent and the embedded servers."
	@echo ""
	@# exec: make must wait for honcho itself (not for a shell that a signal kills first),
	@# so the embedded servers stop only after honcho has stopped web, worker and beat.
	@# honcho gives each process type its own PORT: the demo agent is told the web's URL.
	exec env DEBUG=$${DEBUG:-1} SERGAS_DEMO_URL=http://$(HOST):$(PORT) PROMETHEUS_MULTIPROC_DIR=$(METRICS_DIR) \
		PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start

## test: ruff, then pytest against real PostgreSQL and Redis
test: $(STAMP) lint
	$(EMBEDDED) $(BIN)/pytest $(PYTEST_ARGS)

## bench: every benchmark against its baseline; table in bench/results/latest.md
bench: $(STAMP)
	$(EMBEDDED) $(PY) bench/run.py $(BENCH_ARGS)

## drills: break real processes (worker, beat, PostgreSQL, Redis) and fuzz the API with
## a few thousand requests; each drill prints what it did and counted
drills: $(STAMP)
	$(EMBEDDED) $(BIN)/pytest -m drill -s tests/drills $(PYTEST_ARGS)
	SERGAS_FUZZ_EXAMPLES=$${SERGAS_FUZZ_EXAMPLES:-100} $(EMBEDDED) $(BIN)/pytest -s tests/test_api_fuzz.py $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: $(STAMP)
	$(EMBEDDED) $(PY) manage.py migrate

shell: $(STAMP)
	$(EMBEDDED) $(PY) manage.py shell

embedded-down: $(STAMP)
	$(PY) -m embedded_servers down

clean: embedded-down
	rm -rf $(VENV) var
