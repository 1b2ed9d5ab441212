#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): one table of what the package does on this
# machine's GPU -- default train in float32 and mixed_float16, the mirrored strategy, input
# pipeline vs training steps, export -- in under 5 minutes on a notebook-class GPU. On a
# machine without a GPU it says so and runs on the CPU. CI never runs it (it has no GPU).
#
#   bash benchmarks/gpu_check.sh [--data DIR] [--epochs N] [--work DIR]
#
# PYTHON: the interpreter with TensorFlow and this package (default: the Makefile's .venv if
# there is one, else python3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi
# find_spec looks the packages up without importing them (TensorFlow's import takes seconds).
if ! "$PYTHON" -c "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ('tensorflow', 'mmdigits_keras')))" 2>/dev/null; then
  echo "gpu_check: $PYTHON cannot import tensorflow and mmdigits_keras; install the package first (make install, or pip install -e '.[gpu]')" >&2
  exit 2
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec "$PYTHON" "$here/gpu_check.py" "$@"
