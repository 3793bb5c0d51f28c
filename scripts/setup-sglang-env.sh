#!/usr/bin/env bash
# Build, once, the cached CPU-only virtualenv holding the REAL SGLang that the contract tests
# (tests/contract/, docs/contract-tests.md) check the shim against.
#
#   scripts/setup-sglang-env.sh           build if needed; a no-op (well under 2 s) once built
#   scripts/setup-sglang-env.sh --check   also run the oracle's self-check in the venv
#   scripts/setup-sglang-env.sh --force   delete the venv and build it again
#
# The venv lives OUTSIDE the repo, so a fresh clone on the same machine (CI) reuses it:
#   VLLM_SHIM_SGLANG_VENV   where (default: $HOME/.cache/vllm-shim/sglang-$SGLANG_VERSION)
#   SGLANG_VERSION          which SGLang (default: conf/sglang-version)
#   VLLM_SHIM_SGLANG_PYTHON the interpreter to build it with (default python3; the CPU torch wheel on
#                           this machine is for CPython 3.11)
#   VLLM_SHIM_TORCH_FROM_INDEX=1  allow torch to come from the package index when no local wheel exists
#                           (on x86_64 Linux that is a CUDA build of several GB)
#
# What goes in: torch (CPU build, installed first and alone so nothing can pull a CUDA torch), then the
# few pure-Python/binary packages that SGLang imports on the paths the oracle uses, then sglang itself
# with --no-deps (its declared deps are GPU stacks: flashinfer, sglang-kernel, cuda-python, ...).
# A stamp file records what was installed; the next run compares it and exits at once.
set -euo pipefail

# The pinned SGLang lives in conf/sglang-version (the Dockerfile's ARG default is checked against it).
SGLANG_VERSION="${SGLANG_VERSION:-$(cat "$(dirname "$0")/../conf/sglang-version")}"
TORCH_VERSION="2.13.0"
HOME="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
VENV="${VLLM_SHIM_SGLANG_VENV:-$HOME/.cache/vllm-shim/sglang-$SGLANG_VERSION}"
VENV="${VENV%/}"
PYTHON="${VLLM_SHIM_SGLANG_PYTHON:-python3}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ORACLE="$HERE/../tests/contract/sglang_oracle.py"

# What importing sglang.srt.server_args, ...openai.protocol, ...sampling.sampling_params,
# ...function_call.utils and the validation names of serving_chat/serving_completions needs on a CPU
# (found by importing until nothing was missing). openai is pinned where sglang 0.5.23 pins it.
EXTRA_DEPS=(
  "numpy==2.4.6"
  "orjson==3.13.0"
  "psutil==7.2.2"
  "pybase64==1.5.1"
  "requests==2.34.2"
  "packaging==26.4"
  "pillow==13.0.0"
  "starlette==1.10.0"
  "msgspec==0.23.0"
  "pyzmq==27.3.0"
  "tqdm==4.70.1"
  "ipython==9.18.1"
  "pydantic==2.14.4"
  "aiohttp==3.14.5"
  "openai==2.8.0"
  "partial-json-parser==0.2.1.1.post7"
  "jsonschema==4.26.0"
  "triton==3.9.0"
  # The launch checks (tests/contract/sglang_launch_oracle.py): resolve_once() reads the model config
  # through sglang.srt.configs, which imports transformers (pinned where sglang pins it) and these.
  "transformers==5.19.0"
  "tokenizers==0.23.2"
  "huggingface_hub==1.33.0"
  "hf-xet==1.8.0"
  "safetensors==0.8.0"
  "regex==2026.11.19"
  "PyYAML==6.0.4"
  "typer==0.29.2"
  "click==8.5.1"
  "rich==15.0.0"
  "markdown-it-py==4.3.0"
  "mdurl==0.1.2"
  "shellingham==1.5.4"
  "annotated-doc==0.0.7"
  "dill==0.4.1"
  "sentencepiece==0.2.1"
  "compressed-tensors==0.18.0"
  "loguru==0.7.3"
  "gguf==0.19.0"
)
STAMP="$VENV/.vllm-shim-stamp"
SPEC="stamp-format=1 sglang==$SGLANG_VERSION torch==$TORCH_VERSION+cpu deps=${EXTRA_DEPS[*]}"

force=0 check=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --check) check=1 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup-sglang-env: unknown argument $arg" >&2; exit 2 ;;
  esac
done

say() { printf 'setup-sglang-env: %s\n' "$*"; }
die() { printf 'setup-sglang-env: ERROR: %s\n' "$*" >&2; exit 1; }

run_check() {
  [[ -f "$ORACLE" ]] || die "oracle not found at $ORACLE"
  say "self-check: $VENV/bin/python $ORACLE --check"
  "$VENV/bin/python" "$ORACLE" --check || die "the oracle's self-check failed in $VENV"
}

up_to_date() {
  [[ -f "$STAMP" && "$(cat "$STAMP")" == "$SPEC" && -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c '' 2>/dev/null
}

if [[ $force == 0 ]] && up_to_date; then
  say "up to date: $VENV (sglang $SGLANG_VERSION); nothing to do"
  [[ $check == 1 ]] && run_check
  exit 0
fi

mkdir -p "$(dirname "$VENV")"
command -v flock >/dev/null || die "flock (util-linux) is needed to build the venv safely"
exec 9>"$VENV.lock"
say "waiting for the lock $VENV.lock"
flock 9
# Someone else may have built it while we waited.
if [[ $force == 0 ]] && up_to_date; then
  say "up to date: $VENV (built by a concurrent run)"
  [[ $check == 1 ]] && run_check
  exit 0
fi

started=$SECONDS
if [[ $force == 1 && -e "$VENV" ]]; then
  say "--force: removing $VENV"
  rm -rf "$VENV"
fi
rm -f "$STAMP"

# The machine's pip configuration lists local index directories that do not hold every project; pip
# warns once per package about each. That noise is filtered; everything else pip says is shown.
pip_in_venv() {
  say "pip install $*"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off "$@" 2>&1 \
    | { grep -v -e "is ignored: it is neither a file nor a directory" -e "^Requirement already satisfied" || true; }
}

if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
  command -v "$PYTHON" >/dev/null || die "interpreter $PYTHON not found (set VLLM_SHIM_SGLANG_PYTHON)"
  say "creating the virtualenv $VENV with $("$PYTHON" --version 2>&1) ($(command -v "$PYTHON"))"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" || die "python -m venv failed"
fi

# 1. torch, alone and first. From a local wheel (pip's find-links) unless allowed otherwise: on PyPI the
#    Linux x86_64 torch is a CUDA build of several GB.
if "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' and torch.version.cuda is None else 1)" 2>/dev/null; then
  say "torch $TORCH_VERSION (CPU) already installed"
elif pip_in_venv --no-index --no-deps "torch==$TORCH_VERSION"; then
  pip_in_venv "torch==$TORCH_VERSION" || die "installing torch's dependencies failed"
elif [[ "${VLLM_SHIM_TORCH_FROM_INDEX:-0}" == 1 ]]; then
  pip_in_venv "torch==$TORCH_VERSION" || die "installing torch $TORCH_VERSION failed"
else
  die "no local wheel of torch==$TORCH_VERSION for $("$VENV/bin/python" --version 2>&1) (pip's find-links);
  use a Python that has one (VLLM_SHIM_SGLANG_PYTHON), or VLLM_SHIM_TORCH_FROM_INDEX=1 to download it"
fi

# 2. What sglang imports on the oracle's paths. The constraint keeps torch where it is.
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "torch==$TORCH_VERSION" >"$constraints"
pip_in_venv -c "$constraints" "${EXTRA_DEPS[@]}" || die "installing sglang's import-time dependencies failed"

# 3. sglang itself, without its (GPU) dependency list.
pip_in_venv --no-deps "sglang==$SGLANG_VERSION" || die "installing sglang==$SGLANG_VERSION failed"

# 4. Verify: the right versions, a CPU torch, and the modules the oracle imports.
say "verifying imports (importing sglang.srt takes 5-30 s)"
"$VENV/bin/python" - "$SGLANG_VERSION" "$TORCH_VERSION" <<'PY' || die "verification failed"
import sys, time
t = time.monotonic()
import torch
import sglang
from sglang.srt.server_args import ServerArgs  # noqa: F401
from sglang.srt.entrypoints.openai import protocol  # noqa: F401
from sglang.srt.sampling.sampling_params import SamplingParams  # noqa: F401
from sglang.srt.function_call.utils import normalize_json_schema_types  # noqa: F401
want_sglang, want_torch = sys.argv[1:]
assert sglang.__version__ == want_sglang, f"sglang {sglang.__version__} != {want_sglang}"
assert torch.__version__.split("+")[0] == want_torch, f"torch {torch.__version__} != {want_torch}"
assert torch.version.cuda is None, f"torch is a CUDA build ({torch.version.cuda})"
print(f"setup-sglang-env: sglang {sglang.__version__}, torch {torch.__version__}: imports OK in {time.monotonic() - t:.1f} s")
PY
[[ -f "$ORACLE" ]] && run_check

printf '%s\n' "$SPEC" >"$STAMP"
say "done in $((SECONDS - started)) s: $VENV ($(du -sh "$VENV" 2>/dev/null | cut -f1))"
