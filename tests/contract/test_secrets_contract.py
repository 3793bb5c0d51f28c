"""Against the REAL SGLang (its venv, tests/contract/sglang_secrets_probe.py):

- what SGLang prints on start (`server_args=...`, made as engine.py makes it) for the translated arguments
  holds no secret, and holds the key when given the old way, so the check can fail;
- the launcher runs SGLang's own launch steps and SGLang's log line is still the one the probe makes;
- SGLANG_EXTRA_ARGS resolution (shim/extra_args.py) agrees with SGLang's parser on a generated set of words.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shim.extra_args import RESERVED, resolve, sglang_options
from shim.pod.engine_launch import REDACTED, SGLANG_MAIN_CALLS
from shim.translate import translate
from tests.contract.conftest import SETUP, STAMP, sglang_venv

pytestmark = pytest.mark.contract

PROBE = Path(__file__).with_name("sglang_secrets_probe.py")
LAUNCHER = Path(__file__).resolve().parents[2] / "shim" / "pod" / "engine_launch.py"
USER_KEY = "sk-user-contract-9131"
ENGINE_KEY = "engine-contract-key-2718"


def probe(request: dict[str, Any]) -> Any:
    if os.environ.get("VLLM_SHIM_SKIP_CONTRACT") == "1":
        pytest.skip("VLLM_SHIM_SKIP_CONTRACT=1: contract tests against the real SGLang are skipped")
    venv = sglang_venv()
    if not (venv / "bin" / "python").exists() or not (venv / STAMP).exists():
        pytest.fail(f"the SGLang contract venv is missing at {venv}: run {SETUP}", pytrace=False)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(PROBE)], input=json.dumps(request), capture_output=True, text=True,
        env=env, timeout=300, cwd="/",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@cache
def log_lines(line: str) -> dict[str, str]:
    plan = translate(shlex.split(line), {})
    return dict(probe({"op": "log_line", "argv": list(plan.engine_args), "launcher": str(LAUNCHER), "key": ENGINE_KEY}))


LINES = [
    f"serve m --api-key {USER_KEY}",
    f"serve m --api-key {USER_KEY} other-key --hf-token hf_contract_tok --served-model-name a b --enable-lora "
    "--lora-modules x=/p --max-model-len 4k",
]


@pytest.mark.parametrize("line", LINES)
def test_sglang_start_line_holds_no_secret(line: str) -> None:
    seen = log_lines(line)
    assert seen["plain"].startswith("server_args={'model_path': 'm'")  # the probe really made SGLang's line
    for text in (seen["plain"], seen["launched"], seen["launch_command"]):
        for secret in (USER_KEY, "other-key", "hf_contract_tok", ENGINE_KEY):
            assert secret not in text
    assert f"'api_key': '{REDACTED}'" in seen["launched"]
    assert seen["api_key"] == ENGINE_KEY  # SGLang does run with the internal key


def test_the_old_way_leaks_so_the_check_can_fail() -> None:
    plan = translate(["serve", "m"], {})
    argv = [*plan.engine_args, "--api-key", USER_KEY]
    seen = probe({"op": "log_line", "argv": argv, "launcher": str(LAUNCHER), "key": ENGINE_KEY})
    assert f"'api_key': '{USER_KEY}'" in seen["plain"] and USER_KEY in seen["launch_command"]


def test_launcher_follows_sglangs_launch_path_and_log_line() -> None:
    seen = probe({"op": "sources"})
    # Everything but the deprecation warning and the pid argument is a launch step we must also take.
    steps = [call for call in seen["main_calls"] if call not in ("warnings.warn", "os.getpid")]
    assert tuple(steps) == SGLANG_MAIN_CALLS
    # The probe's log line is engine.py's: every server_args= statement goes through this helper.
    assert seen["log_statements"] and all("_server_args_for_logging(server_args)" in s for s in seen["log_statements"])
    assert seen["helper"] == ["return redact_watermark_secrets(server_args.resolved_dict())"]


def generated_words() -> list[str]:
    """Every prefix of every reserved option (bare and with `=`), and prefixes around the unique point of
    a spread of other options: exact, unique, ambiguous and unknown words."""
    options = sglang_options()
    words: set[str] = {"--zzz-unknown", "--no-host", "-h", "-hx"}
    for option, dest in options.items():
        if not option.startswith("--"):
            continue
        if dest in RESERVED:
            lengths = range(3, len(option) + 1)
        elif sum(map(ord, option)) % 7 == 0:
            unique = next((n for n in range(3, len(option) + 1) if len(resolve(option[:n])) == 1), len(option))
            lengths = range(max(3, unique - 1), min(len(option), unique + 1) + 1)
        else:
            continue
        for n in lengths:
            words |= {option[:n], option[:n] + "=1"}
    return sorted(words)


def _meaning(answer: dict[str, Any]) -> frozenset[str] | str:
    if "dests" in answer:
        return frozenset(answer["dests"])
    if answer.get("exit") == 0:
        return frozenset({"help"})
    error = answer["error"]
    if error.startswith("ambiguous option"):
        return "ambiguous"
    named = re.match(r"argument ([^:]+):", error)
    assert named, error
    return frozenset({sglang_options()[named.group(1).split("/")[0]]})


def test_extra_args_resolution_agrees_with_sglangs_parser() -> None:
    words = generated_words()
    assert len(words) > 200
    answers = probe({"op": "resolve", "words": words})
    disagree = []
    for word, answer in zip(words, answers, strict=True):
        ours, theirs = resolve(word), _meaning(answer)
        expected = "ambiguous" if len(ours) > 1 else ours
        if theirs != expected:
            disagree.append(f"{word}: shim {sorted(ours)}, SGLang {answer}")
    assert not disagree, "\n".join(disagree[:20])
