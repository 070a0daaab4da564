# Everything runs in a project virtualenv (.venv), made on first use. A fresh pip is installed
# first: console-script launchers written by pip older than 25.2 import `re` before our code runs.
# The editable install is setuptools' "strict" kind: a plain path in a .pth file, to a tree of
# links under build/. The default kind installs an import hook that loads `re` and pathlib at
# every interpreter start, which would slow every call and skew the benchmark. The links follow
# edits; a module added or removed changes credproc/ and so makes a fresh install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml credproc
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.2"
	$(BIN)/python -m pip install --quiet -e ".[test]" --config-settings editable_mode=strict
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -n auto

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) build
