#!/usr/bin/env bash
# Prepares the GPU check (benchmarks/gpu_check.sh) for the project's lent GPU machine, which has
# Python 3.12 with JAX and PyTorch (CUDA), no TensorFlow, no Keras and no network: what it needs
# travels with the working tree (at most 64 MiB), in two git-ignored folders:
#   .whl/  wheels of what that machine lacks (Keras, keras-tuner and what they import that the
#          machine's image has not: ../.library/device/KINDS.md lists the image's packages);
#   .gpu/  kaggle_sample from $MMDIGITS_SHARED_DATA, as float32 (about 24 MiB).
# Then, with the device tool: run(command="bash benchmarks/gpu_check.sh", carry=[".whl", ".gpu"]).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$root/.venv/bin/python}"
shared="${MMDIGITS_SHARED_DATA:-$(dirname "$root")/shared/data}"
rm -rf "$root/.whl" "$root/.gpu"
mkdir -p "$root/.whl" "$root/.gpu"
# The versions this project's own environment runs (setup.cfg's floors allow them).
wheels=(keras==3.15.1 keras-tuner==1.4.8 kt-legacy==1.0.5 namex==0.1.0 optree==0.20.0 espeakng-loader==0.2.4)
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$root/.whl" "${wheels[@]}"
# python_speech_features is published as a source archive only: built here into a wheel.
"$PYTHON" -m pip wheel --quiet --no-deps -w "$root/.whl" python_speech_features==0.6
"$PYTHON" - "$shared/kaggle_sample" "$root/.gpu/kaggle_sample" <<'PY'
import shutil, sys
from pathlib import Path
import numpy as np
source, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True)
for name in ("x_train_wr", "x_train_sp", "x_test_wr", "x_test_sp"):
    np.save(out / f"{name}.npy", np.load(source / f"{name}.npy", allow_pickle=False).astype(np.float32))
shutil.copy(source / "y_train.csv", out / "y_train.csv")
PY
du -sh "$root/.whl" "$root/.gpu"
