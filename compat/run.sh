#!/usr/bin/env bash
# One notebook image of the compatibility run (make compat): a fresh environment of the image's
# Python with the packages of compat/notebook-IMAGE.txt, our wheel (build/compat) installed on
# top as a notebook installs it, then the smoke suite, both example notebooks and README's
# snippet. Rebuilt from nothing every time. `pytest` (not `python -m pytest`) so that the installed wheel is imported,
# not the source tree.
#
#   bash compat/run.sh 2025|2026
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
image="$1"
pins="$root/compat/notebook-$image.txt"
version="$(sed -n 's/^# Python \([0-9.]*\)$/\1/p' "$pins")"
python="$(ls "$(pyenv root 2>/dev/null)"/versions/"$version"*/bin/python"$version" 2>/dev/null | tail -1 \
          || command -v "python$version")"
venv="$root/.venv-compat-$image"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/pip" install --quiet -r "$pins" pytest nbclient nbformat ipykernel
export MMDIGITS_NOTEBOOK="$pins"
MMDIGITS_WHEEL="$(ls "$root"/build/compat/mmdigits_keras-*.whl)" "$venv/bin/pytest" -c compat/pytest.ini \
  compat/test_install.py
"$venv/bin/pytest" -c compat/pytest.ini compat/test_smoke.py compat/test_notebook.py compat/test_readme.py
