#!/usr/bin/env bash
# One install path for CI, developers and the container image.
#   scripts/install.sh          runtime: haproxy (apt) + this package
#   scripts/install.sh --dev    also the test tools, as an editable install
# PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
dev=0
[[ "${1:-}" == "--dev" ]] && dev=1

if ! command -v haproxy >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "install: haproxy from apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy >/dev/null
  else
    echo "install: haproxy is missing and cannot be installed here (needs root and apt-get)" >&2
    exit 1
  fi
fi

if [[ $dev -eq 1 ]]; then
  "$PYTHON" -m pip install -q --disable-pip-version-check -e ".[test]"
else
  "$PYTHON" -m pip install -q --disable-pip-version-check .
fi
echo "install: $(haproxy -v | head -n1)"
echo "install: vllm-to-sglang into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
