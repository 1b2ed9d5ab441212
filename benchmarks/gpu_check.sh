#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): one table of what the default `train` does on this
# machine's accelerator, per Keras backend (JAX and PyTorch by default), in under 5 minutes. On a
# machine without one it says so and runs on the CPU. CI never runs it (it has no GPU).
#
#   bash benchmarks/gpu_check.sh [--data DIR] [--rows 60000] [--epochs N] [--backends jax torch]
#
# On the project's lent GPU machine (no network, no TensorFlow, no Keras), prepare here first:
# `bash benchmarks/gpu_prepare.sh` downloads the wheels that machine lacks into .whl/ and writes
# the sample into .gpu/ (both git-ignored; they travel with `carry`); this script installs the
# wheels into /tmp/site where Keras is missing, and uses .gpu/kaggle_sample when it is there.
# PYTHON: the interpreter (default: the Makefile's .venv if there is one, else python3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi
if ! "$PYTHON" -c "" 2>/dev/null; then
  echo "gpu_check: $PYTHON does not run; set PYTHON to the interpreter with JAX or PyTorch (make install: .venv)" >&2
  exit 2
fi
has_keras() { "$PYTHON" -c "import importlib.util as u, sys; sys.exit(u.find_spec('keras') is None)" 2>/dev/null; }
if compgen -G "$root/.whl/*.whl" > /dev/null && ! has_keras && "$PYTHON" -m pip --version > /dev/null 2>&1; then
  "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$root"/.whl/*.whl
  export PYTHONPATH="/tmp/site:$root${PYTHONPATH:+:$PYTHONPATH}"
fi
# The package from this tree when it is not installed (the GPU machine).
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$root"
data=()
if [[ -d "$root/.gpu/kaggle_sample" && " $* " != *" --data "* ]]; then data=(--data "$root/.gpu/kaggle_sample"); fi
# find_spec looks the packages up without importing them (a backend's import takes seconds).
if ! "$PYTHON" -c "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ('keras', 'mmdigits_keras')))" 2>/dev/null; then
  echo "gpu_check: $PYTHON cannot import keras and mmdigits_keras; install the package first (make install), or run benchmarks/gpu_prepare.sh and carry .whl" >&2
  exit 2
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec "$PYTHON" "$here/gpu_check.py" "${data[@]}" "$@"
