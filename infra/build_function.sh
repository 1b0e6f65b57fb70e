#!/usr/bin/env bash
# The one rule that builds a function's zip content (sam build, BuildMethod: makefile; infra/function.mk):
#   infra/build_function.sh ARTIFACTS_DIR PACKAGE... (the last package is the function's own: its
#   requirements.txt pins what the zip installs)
# = the pinned requirements as Linux x86_64 CPython wheels of the runtime's Python (test folders removed,
#   no .pyc), then trip_core and the listed packages copied from this one source tree (no __pycache__,
#   only .py and .csv files). The installed requirements are cached per content hash in
#   .state/function-deps, so a rebuild after a code change only copies.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARTIFACTS_DIR=$1; shift
PACKAGES=(trip_core "$@")
OWN=${PACKAGES[-1]}
REQUIREMENTS=$ROOT/$OWN/requirements.txt
PYTHON_VERSION=$(sed -n 's/^ *Runtime: python//p' "$ROOT/template.yaml" | head -1)
PIP=${PIP:-$( [[ -x $ROOT/.venv/bin/pip ]] && echo "$ROOT/.venv/bin/pip" || echo pip3 )}

LOCK=$ROOT/requirements.lock  # pins what the requirements pull in, as in the project venv
key=$( (echo "$PYTHON_VERSION"; cat "$REQUIREMENTS" "$LOCK" "$0") | sha256sum | cut -c1-16)
deps=$ROOT/.state/function-deps/$OWN-$key
if [[ ! -f $deps/.complete ]]; then
  rm -rf "$deps"
  # manylinux_2_28 (glibc 2.28) covers the python3.12+ runtimes (Amazon Linux 2023, glibc 2.34)
  "$PIP" install --quiet --disable-pip-version-check --target "$deps" --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --python-version "$PYTHON_VERSION" --implementation cp --no-compile -c "$LOCK" -r "$REQUIREMENTS"
  # console scripts and type stubs are never run in Lambda; test suites are dead weight in a zip; numpy.testing (imported by scipy) needs numpy/_core/tests/_natype.py
  rm -rf "$deps/bin" "$deps"/*-stubs
  find "$deps" -type d -name tests ! -path "*/numpy/_core/tests" -prune -exec rm -rf {} +
  if [[ -d $deps/numpy/_core/tests ]]; then
    find "$deps/numpy/_core/tests" -mindepth 1 ! -name _natype.py ! -name __init__.py -exec rm -rf {} +
  fi
  touch "$deps/.complete"
fi

mkdir -p "$ARTIFACTS_DIR"
cp -R "$deps/." "$ARTIFACTS_DIR/"
rm -f "$ARTIFACTS_DIR/.complete"
# only the packages' modules and package data: never a stray file of the working tree
(cd "$ROOT" && find "${PACKAGES[@]}" -name __pycache__ -prune -o -type f \( -name '*.py' -o -name '*.csv' \) -print0 \
  | tar --null -T - -cf -) | tar -C "$ARTIFACTS_DIR" -xf -
