#!/usr/bin/env bash
# Turns an SGLang base image into the vllm-to-sglang image. The Dockerfile runs it once, as root, from the
# build context; tests/packaging/test_install.py runs it outside Docker with every path pointed at a scratch dir.
#
#   VENV               where the package is installed (default /opt/venv, the path the production stack's chart
#                      and operator call); see step 2 for how it relates to the base image's Python.
#   BASE_PYTHON        the base image's interpreter, the one SGLang is installed in (default python3)
#   BIN_DIR            where vllm, vllm-shim, supervisord and supervisorctl are linked too (default /usr/local/bin)
#   ETC_DIR            where supervisord.conf is linked to the rendered one (default /etc)
#   VLLM_SHIM_RUN_DIR  the run directory the shim renders into (default /tmp/vllm-shim)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${VENV:-/opt/venv}
BASE_PYTHON=${BASE_PYTHON:-python3}
BIN_DIR=${BIN_DIR:-/usr/local/bin}
ETC_DIR=${ETC_DIR:-/etc}
RUN_DIR=${VLLM_SHIM_RUN_DIR:-/tmp/vllm-shim}
say() { echo "setup-image: $*"; }

# 1. A real vLLM in the base image would answer `vllm` and `python -m vllm...` instead of the shim.
#    SGLang 0.5.23 does not need it on CUDA or ROCm: its `vllm` imports sit in `try/except ImportError` or
#    in branches for other platforms.
remove_real_vllm() {
  if "$1" -m pip show vllm >/dev/null 2>&1; then
    say "removing the vllm distribution from $1 (it would shadow the shim)"
    PIP_BREAK_SYSTEM_PACKAGES=1 "$1" -m pip uninstall -y vllm
  fi
}
remove_real_vllm "$BASE_PYTHON"

# 2. The environment at VENV:
#    - the base image has a Python there already: use it as it is;
#    - BASE_PYTHON is itself a virtualenv: install into that one and link it as VENV (a venv over a venv
#      would not see the packages of the one below);
#    - otherwise (SGLang in the system interpreter): a venv with --system-site-packages, so SGLang stays
#      importable behind our packages. --without-pip: the system pip is importable through the same path.
created=0
base_venv=$("$BASE_PYTHON" -c 'import sys; print(sys.prefix if sys.prefix != sys.base_prefix else "")')
if [[ -x $VENV/bin/python ]]; then
  say "installing into the base image's environment at $VENV"
elif [[ -n $base_venv ]]; then
  say "installing into the base image's virtualenv $base_venv, linked as $VENV"
  mkdir -p "$(dirname "$VENV")"
  ln -sfn "$base_venv" "$VENV"
else
  say "creating $VENV over $("$BASE_PYTHON" -c 'import sys; print(sys.executable)')"
  "$BASE_PYTHON" -m venv --system-site-packages --without-pip "$VENV"
  created=1
fi
py=$VENV/bin/python
remove_real_vllm "$py"

# 3. Pin every distribution already there (SGLang, torch, fastapi, ...) as a constraint, so installing the
#    shim can add packages but never replaces one SGLang was built and tested with: a conflict fails the
#    build instead of shadowing SGLang's dependency. The build tools are left free for pip's isolated build.
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$py" - >"$constraints" <<'EOF'
import re
from importlib.metadata import distributions
free = {"pip", "setuptools", "wheel", "vllm-to-sglang"}
pep440 = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[a-z0-9.]+)?$", re.IGNORECASE)
seen = set()
for dist in distributions():  # sys.path order: the copy Python imports comes first
    name = re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower()
    if name and name not in seen and name not in free and pep440.match(dist.version):
        print(f"{name}=={dist.version}")
    seen.add(name)
EOF
say "$(wc -l <"$constraints") installed distributions pinned"

# 4. haproxy (apt) and the package, through the same script CI uses.
if ! PYTHON=$py PIP_CONSTRAINT=$constraints "$src/scripts/install.sh"; then
  say "install failed. A pip conflict with a constraint means the shim needs another version of a package" >&2
  say "the base image ships (pinned above); see docs/building-image.md" >&2
  exit 1
fi

# 5. Reachable without PATH (login shells, exec probes) and where supervisorctl looks for its config
#    (/etc/supervisord.conf is on its default search list; the shim renders the real one at run time).
mkdir -p "$BIN_DIR" "$ETC_DIR"
for tool in vllm vllm-shim supervisord supervisorctl; do
  [[ $BIN_DIR/$tool -ef $VENV/bin/$tool ]] || ln -sfn "$VENV/bin/$tool" "$BIN_DIR/$tool"
done
ln -sfn "$RUN_DIR/supervisord.conf" "$ETC_DIR/supervisord.conf"

# 6. OpenShift runs the image as a random uid in group 0: give group 0 the owner's rights on what we made.
#    A base image's own environment is left as it is (readable by all already; a recursive chmod would
#    copy every file of it into a new layer).
if ((created)); then
  chgrp -R 0 "$VENV"
  chmod -R g=u "$VENV"
fi

# 7. The same checks tests/packaging/test_install.py runs outside Docker.
"$src/deploy/image/verify-install.sh" "$VENV"
