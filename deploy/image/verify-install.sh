#!/usr/bin/env bash
# Checks an installed vllm-to-sglang. The Dockerfile runs it as the image's last build step and
# tests/packaging/test_install.py runs it against a scratch virtualenv, so both assert the same layout.
#
#   deploy/image/verify-install.sh PREFIX          PREFIX = the virtualenv (/opt/venv in the image)
#
# EXPECT_SGLANG_VERSION=X (the image build sets it) also requires that `python3` on PATH is PREFIX's and
# sees the sglang X distribution, so `python3 -m shim.pod.engine_launch` (the shim's engine, which runs SGLang's
# launch_server steps) starts the pinned one.
set -uo pipefail
prefix=$(cd "${1:?usage: verify-install.sh PREFIX}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
py=$prefix/bin/python
# From / so that neither this source tree nor the build context can stand in for the installed package.
cd /

failures=0
check() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "ok   $what"
  else
    echo "FAIL $what"
    printf '%s\n' "$out" | tail -n 15 | sed 's/^/       /'
    failures=$((failures + 1))
  fi
}

for tool in vllm vllm-shim supervisord supervisorctl; do
  check "bin/$tool is installed" test -x "$prefix/bin/$tool"
done
check "vllm --version prints a version line" \
  bash -c '"$1/bin/vllm" --version | grep -Eq "[0-9]+\.[0-9]+"' _ "$prefix"
check "python -m vllm.entrypoints.openai.api_server --help runs the shim" \
  "$py" -m vllm.entrypoints.openai.api_server --help
# A real vllm anywhere on sys.path before ours would answer instead of the shim.
check "the vllm and shim modules come from $prefix" "$py" - <<'EOF'
import os, sys
import shim, vllm.entrypoints.openai.api_server as api
prefix = os.path.realpath(sys.prefix) + os.sep
for mod in (shim, api):
    where = os.path.realpath(mod.__file__)
    assert where.startswith(prefix), f"{mod.__name__} is imported from {where}, not from {prefix}"
EOF
# Every data file under conf/ and templates/ must ship inside the package (pyproject package-data).
check "conf/ and templates/ data files are inside the installed package" "$py" - "$src" <<'EOF'
import sys
from importlib.resources import files
from pathlib import Path
src = Path(sys.argv[1])
missing = []
for folder, package in (("conf", "shim.conf"), ("templates", "shim.templates")):
    installed = {p.name for p in files(package).iterdir()}
    wanted = {p.name for p in (src / folder).iterdir() if p.is_file() and p.suffix not in (".py", ".pyc")}
    missing += [f"{folder}/{name}" for name in sorted(wanted - installed)]
assert not missing, "not installed: " + ", ".join(missing)
EOF
check "vllm-shim translate accepts a chart-style command line" \
  "$prefix/bin/vllm-shim" translate -- serve facebook/opt-125m --host 0.0.0.0 --port 8000
check "haproxy is on PATH" haproxy -v

if [[ -n ${EXPECT_SGLANG_VERSION:-} ]]; then
  check "python3 on PATH is $prefix/bin/python3" \
    bash -c '[[ $(command -v python3) == "$1/bin/python3" ]]' _ "$prefix"
  check "python3 sees sglang $EXPECT_SGLANG_VERSION" python3 - <<'EOF'
import os
from importlib.metadata import version
want, have = os.environ["EXPECT_SGLANG_VERSION"], version("sglang")
assert have == want or have.startswith(want + "+"), f"sglang {have} is installed, the image pins {want}"
EOF
fi

if ((failures)); then
  echo "verify-install: $failures check(s) failed for $prefix" >&2
  exit 1
fi
echo "verify-install: $prefix is complete"
