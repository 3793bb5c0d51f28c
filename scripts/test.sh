#!/usr/bin/env bash
# The one test command, for developers and CI alike (CI runs it through .ci/run).
# It sets up what it needs, then runs lint, types and every test suite; any failure fails the run.
#   scripts/test.sh                 everything
#   scripts/test.sh tests/unit -x   extra arguments go to pytest
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHON=${PYTHON:-python3}

echo "== setup"
scripts/install.sh --dev || exit 1
# The real SGLang (CPU, no deps beyond what its parser and request models import), cached outside the
# checkout so repeated runs and CI on the same machine reuse it.
scripts/setup-sglang-env.sh || exit 1
# SGLang's real server (scheduler scripted, no GPU, no model download) for the live suites; extends the venv above.
scripts/setup-sglang-server-env.sh || exit 1

status=0
echo "== ruff"
"$PYTHON" -m ruff check shim middleware sim tests scripts bench vllm || status=1
echo "== mypy"
"$PYTHON" -m mypy --config-file pyproject.toml shim middleware sim || status=1
echo "== pytest"
"$PYTHON" -m pytest "${@:-tests}"
rc=$?
# pytest's 5 means it collected nothing: that is a failure of the suite, not a pass.
[[ $rc -ne 0 ]] && status=1
echo "== done: $([[ $status -eq 0 ]] && echo PASSED || echo FAILED)"
exit $status
