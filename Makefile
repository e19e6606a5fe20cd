# Two commands: `make run` (the portal, a worker and beat on embedded defaults) and `make test` (everything).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv

.PHONY: run test install install-test lint constraints clean seed

$(PY):
	$(PYTHON) -m venv $(VENV)

# uv installs into the venv itself, so a fresh machine needs nothing but Python (ensurepip covers venvs made without pip).
$(UV): | $(PY)
	$(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip >/dev/null
	$(PY) -m pip install -q --disable-pip-version-check uv

$(VENV)/.installed: $(UV) pyproject.toml constraints.txt
	$(UV) pip install -q --python $(PY) -c constraints.txt -r pyproject.toml
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(UV) pip install -q --python $(PY) -c constraints.txt -r pyproject.toml --extra test
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	@mkdir -p var/artifacts var/celery
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo "Portal: http://127.0.0.1:8000  (Ctrl-C stops the portal, the worker, beat and the model servers)"
	@trap '$(PY) manage.py stop_local_model_servers' EXIT; $(VENV)/bin/honcho -f platform/Procfile.dev start

test: install-test
	bash scripts/test.sh

lint: install-test
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# Re-pin exact versions after changing a range in pyproject.toml.
constraints: $(UV)
	$(UV) pip compile -q pyproject.toml --extra test -o constraints.txt --no-header --no-annotate

clean:
	rm -rf var/db.sqlite3 var/celery var/artifacts var/static .pytest_cache
