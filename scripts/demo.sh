#!/usr/bin/env bash
# Bring the stack up on :8000 with the simulated engine (no GPU needed) and show a request.
# Ctrl-C stops it. PORT=9000 scripts/demo.sh picks another port.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8000}
scripts/install.sh

(
  for _ in $(seq 1 120); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")" == 200 ]] && break
    sleep 1
  done
  echo
  echo "== GET /v1/models"
  curl -s "http://127.0.0.1:$PORT/v1/models"; echo
  echo "== POST /v1/chat/completions"
  curl -s "http://127.0.0.1:$PORT/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model": "demo-model", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 8}'
  echo
  echo "== the stack: supervisorctl -c ${VLLM_SHIM_RUN_DIR:-/tmp/vllm-shim}/supervisord.conf status"
  supervisorctl -c "${VLLM_SHIM_RUN_DIR:-/tmp/vllm-shim}/supervisord.conf" status
  echo "== up on http://127.0.0.1:$PORT (Ctrl-C to stop)"
) &

VLLM_SHIM_ENGINE=sim exec vllm serve demo-model --host 0.0.0.0 --port "$PORT" --max-model-len 4096
