# PrefLab: `make run` starts the service on http://127.0.0.1:8000; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# The suite runs against a real PostgreSQL and Redis (the local ones unless told otherwise).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/preflab
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test lint format install demo bench migrate worker clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py bootstrap_demo
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

worker: $(STAMP)
	$(VENV)/bin/celery -A config worker -Q default,training -c 1 -l info

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} PREFLAB_TEST_REDIS_URL=$${PREFLAB_TEST_REDIS_URL:-$(TEST_REDIS_URL)} \
		$(VENV)/bin/pytest -p no:cacheprovider $(PYTEST_ARGS)

demo: migrate
	$(PY) manage.py demo $(DEMO_ARGS)

bench: $(STAMP)
	@ls benchmarks/*.py

clean:
	rm -rf var .pytest_cache
