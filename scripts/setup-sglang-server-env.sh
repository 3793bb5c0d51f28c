#!/usr/bin/env bash
# Build, once, the cached environment in which SGLang's REAL server runs with a scripted scheduler
# (tests/sglang_engine/, docs/real-sglang-tests.md): the live suites' second engine beside the simulator.
#
#   scripts/setup-sglang-server-env.sh           build if needed; a no-op (well under 2 s) once built
#   scripts/setup-sglang-server-env.sh --force   delete it and build it again
#
# It lives OUTSIDE the repo beside the contract venv, so a fresh clone on the same machine (CI) reuses it:
#   VLLM_SHIM_SGLANG_SERVER_ENV   where (default: $HOME/.cache/vllm-shim/sglang-server-$SGLANG_VERSION)
#   VLLM_SHIM_SGLANG_VENV         the contract venv it extends (built first by scripts/setup-sglang-env.sh)
#
# What goes in: nothing twice. The venv reads the contract venv's site-packages (torch, sglang, pydantic, ...)
# through a .pth line placed after its own, and adds only what SGLang's HTTP server, tokenizer manager and
# detokenizer import beyond the contract's paths, each pinned and installed --no-deps (SGLang's declared deps
# are GPU stacks). Then it generates the local model directory (tokenizer, chat template, config: no weights,
# no download) into $ENV/model. A stamp records the spec; the next run compares it and exits at once.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SGLANG_VERSION="${SGLANG_VERSION:-$(cat "$HERE/../conf/sglang-version")}"
HOME="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
CONTRACT="${VLLM_SHIM_SGLANG_VENV:-$HOME/.cache/vllm-shim/sglang-$SGLANG_VERSION}"
CONTRACT="${CONTRACT%/}"
ENV_DIR="${VLLM_SHIM_SGLANG_SERVER_ENV:-$HOME/.cache/vllm-shim/sglang-server-$SGLANG_VERSION}"
ENV_DIR="${ENV_DIR%/}"
MODEL_SCRIPT="$HERE/../tests/sglang_engine/model_dir.py"

# Found by importing sglang.srt.entrypoints.http_server and serving until nothing was missing.
# transformers is the version SGLang 0.5.23 pins (5.17 cannot register image processors without torchvision);
# torch_memory_saver because --enable-sleep-mode becomes --enable-memory-saver, which imports it at launch.
SERVER_DEPS=(
  "transformers==5.19.0" "tokenizers==0.23.2" "huggingface_hub==1.33.0" "safetensors==0.8.0" "hf-xet==1.8.0"
  "regex==2026.11.19" "pyyaml==6.0.4" "typer==0.29.2" "click==8.5.1" "shellingham==1.5.4"
  "fastapi==0.165.0" "annotated-doc==0.0.7" "opentelemetry-api==1.45.2" "uvicorn==0.55.0" "uvloop==0.23.0"
  "python-multipart==0.0.34" "prometheus_client==0.26.0" "setproctitle==1.3.8"
  "dill==0.4.1" "apache-tvm-ffi==0.1.11" "sentencepiece==0.2.3" "compressed-tensors==0.18.0" "loguru==0.7.3"
  "gguf==0.19.0" "einops==0.8.2" "xgrammar==0.2.7" "interegular==0.3.3" "soundfile==0.14.0" "cffi==2.1.1"
  "pycparser==3.12" "torch_memory_saver==0.0.10"
)
STAMP="$ENV_DIR/.vllm-shim-stamp"

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup-sglang-server-env: unknown argument $arg" >&2; exit 2 ;;
  esac
done

say() { printf 'setup-sglang-server-env: %s\n' "$*"; }
die() { printf 'setup-sglang-server-env: ERROR: %s\n' "$*" >&2; exit 1; }

up_to_date() {
  [[ -f "$STAMP" && "$(cat "$STAMP")" == "$SPEC" && -x "$ENV_DIR/bin/python" && -f "$ENV_DIR/model/tokenizer.json" ]]
}

# The contract venv first (a no-op once built): this environment reads its packages, so its stamp is part of ours.
"$HERE/setup-sglang-env.sh" >/dev/null || die "the contract venv $CONTRACT could not be built (run scripts/setup-sglang-env.sh)"
SPEC="stamp-format=1 sglang==$SGLANG_VERSION contract=$CONTRACT:$(sha256sum "$CONTRACT/.vllm-shim-stamp" | cut -c1-16)"
SPEC+=" deps=${SERVER_DEPS[*]} model=$(sha256sum "$MODEL_SCRIPT" | cut -c1-16)"

if [[ $force == 0 ]] && up_to_date; then
  say "up to date: $ENV_DIR; nothing to do"
  exit 0
fi

mkdir -p "$(dirname "$ENV_DIR")"
command -v flock >/dev/null || die "flock (util-linux) is needed to build the environment safely"
exec 9>"$ENV_DIR.lock"
say "waiting for the lock $ENV_DIR.lock"
flock 9
if [[ $force == 0 ]] && up_to_date; then
  say "up to date: $ENV_DIR (built by a concurrent run)"
  exit 0
fi

started=$SECONDS
rm -rf "$ENV_DIR"
"$CONTRACT/bin/python" -m venv --without-pip "$ENV_DIR" || die "python -m venv failed"
site="$("$ENV_DIR/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
contract_site="$("$CONTRACT/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# After this venv's own site-packages: its pins win over the contract venv's.
printf '%s\n' "$contract_site" >"$site/zz-vllm-shim-contract-venv.pth"

say "pip install --no-deps ${SERVER_DEPS[*]}"
# --target: pip (the contract venv's) must never touch the contract venv's own packages.
if ! "$ENV_DIR/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off --no-deps \
  --target "$site" "${SERVER_DEPS[@]}" 2>&1 \
  | { grep -v -e "is ignored: it is neither a file nor a directory" -e "^Requirement already satisfied" || true; }; then
  die "installing the server's packages failed"
fi

say "generating the model directory $ENV_DIR/model"
"$ENV_DIR/bin/python" "$MODEL_SCRIPT" "$ENV_DIR/model" || die "generating the model directory failed"

say "verifying: importing sglang.srt.entrypoints.http_server (about 10-20 s)"
PYTHONPATH="$HERE/.." "$ENV_DIR/bin/python" -c '
import tests.sglang_engine.torchvision_stub as stub
stub.install()
import sglang.srt.entrypoints.http_server  # noqa: F401
' || die "verification failed"

printf '%s\n' "$SPEC" >"$STAMP"
say "done in $((SECONDS - started)) s: $ENV_DIR ($(du -sh "$ENV_DIR" 2>/dev/null | cut -f1))"
