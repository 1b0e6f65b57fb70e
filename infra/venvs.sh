#!/usr/bin/env bash
# Build the tool virtual environments (idempotent: a stamp file per venv, rebuilt when its requirements change).
#   infra/venvs.sh localstack   -> .venvs/localstack  (Python 3.13, localstack-core + the `local` Lambda executor)
#   infra/venvs.sh sam          -> .venvs/sam         (Python 3.11, aws-sam-cli + samlocal)
#   infra/venvs.sh evidently    -> .venvs/evidently   (Python 3.11, Evidently + pandas < 3, for make bench)
#   infra/venvs.sh checkov      -> .venvs/checkov     (Python 3.11, checkov: the template scan of make lint)
#   infra/venvs.sh python       -> prints the interpreter of the project venv (the Lambda runtime's Python)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# The one Python of the product: project venv, LocalStack's Lambda interpreter and template.yaml's Runtime
# (tests/unit/test_function_requirements.py holds them together). 3.12: scikit-learn 1.9 ships manylinux_2_28
# wheels only, which the python3.12 runtime (Amazon Linux 2023) loads and python3.11 (Amazon Linux 2) cannot.
PROJECT_PYTHON=3.12.1

find_python() {  # find_python 3.13.0 -> path of an interpreter of that version
  local ver=$1 minor=${1%.*} cand
  if command -v pyenv >/dev/null 2>&1; then
    cand="$(pyenv root)/versions/$ver/bin/python$minor"
    [[ -x $cand ]] && { echo "$cand"; return; }
  fi
  for cand in "python$minor" "$HOME/.pyenv/versions/$ver/bin/python$minor"; do
    if PYENV_VERSION=$ver "$cand" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$minor'.split('.')))" 2>/dev/null; then
      command -v "$cand" || echo "$cand"; return
    fi
  done
  echo "no python$minor found (install it with pyenv: pyenv install $ver)" >&2
  return 1
}

build() {  # build NAME PYTHON_VERSION REQUIREMENTS
  local name=$1 ver=$2 req=$3
  local venv=.venvs/$name stamp=.venvs/$name/.installed
  local want; want="$(sha256sum "$req" | cut -c1-16)"
  if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
  local py; py="$(find_python "$ver")"
  local t0=$SECONDS
  echo "building $venv with $py ..."
  rm -rf "$venv"
  PYENV_VERSION=$ver "$py" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
  echo "$venv ready in $((SECONDS - t0)) s"
}

case "${1:-}" in
  localstack)
    build localstack 3.13.0 infra/localstack/requirements.txt
    # the `local` Lambda executor plugin: editable install (code changes need no reinstall; the
    # entry points in its pyproject.toml do, hence its own stamp)
    plug=infra/localstack_local_executor
    want="$(sha256sum "$plug/pyproject.toml" | cut -c1-16)"
    if [[ "$(cat .venvs/localstack/.plugin 2>/dev/null)" != "$want" ]]; then
      .venvs/localstack/bin/pip install --quiet --disable-pip-version-check --no-deps -e "$plug"
      echo "$want" > .venvs/localstack/.plugin
    fi
    # the interpreter the `local` executor runs python3.12 functions with: boto3, like the Lambda runtime
    build lambda-python3.12 "$PROJECT_PYTHON" infra/localstack/lambda-runtime-python3.12.txt
    ;;
  python) find_python "$PROJECT_PYTHON" ;;
  sam) build sam 3.11.7 infra/sam/requirements.txt ;;
  evidently) build evidently 3.11.7 benchmarks/evidently/requirements.txt ;;  # benchmark-only
  checkov) build checkov 3.11.7 infra/checkov/requirements.txt ;;  # make lint (pins boto3 1.35: own venv)
  *) echo "usage: $0 localstack|sam|evidently|checkov|python" >&2; exit 2 ;;
esac
