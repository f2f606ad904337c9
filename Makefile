# Two commands for a new machine: `make run` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: run test install lint bench demo status clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(TSTAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

## run: the whole MES in one process on SQLite files, in-process transport and cache
run: $(STAMP)
	$(VENV)/bin/isles run

## test: the whole suite (needs PostgreSQL and Redis on 127.0.0.1)
test: $(TSTAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## lint: ruff (pyflakes, pycodestyle, isort, bugbear) and mypy (strict on src/isles)
lint: $(TSTAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

demo: $(STAMP)
	$(VENV)/bin/isles demo

status: $(STAMP)
	$(VENV)/bin/isles status

bench: $(TSTAMP)
	$(PY) -m bench.events --quick

clean:
	rm -rf data .pytest_cache
