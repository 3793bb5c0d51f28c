"""(argv, environ) → Plan: the whole decision, as a pure function. Nothing here touches the process."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shim import VLLM_COMPAT_VERSION
from shim.argv import ParsedArgs, parse
from shim.env import read_env
from shim.errors import CliError
from shim.extra_args import check_extra_args
from shim.pd_plan import engine_args as pd_engine_args
from shim.pd_plan import pd_plan
from shim.pd_plan import warnings as pd_warnings
from shim.plan import ENGINE_SECRETS_FILE, MIDDLEWARE_STATE_FILE, Dropped, Plan
from shim.plan_steps import STEPS, Draft
from shim.rules import apply, rules

# vLLM >= 0.10 serves this model when none is named anywhere.
VLLM_DEFAULT_MODEL = "Qwen/Qwen3-0.6B"
ENGINE_PROGRAMS = {
    # SGLang's own launch path, with the internal key set between parsing and launch (never on argv).
    "sglang": ("python3", "-m", "shim.pod.engine_launch"),
    "sim": ("{python}", "-m", "sim"),
}


@dataclass
class _Collected:
    args: list[str] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def split_command(argv: Sequence[str]) -> list[str]:
    """Arguments after the program: `serve X ...` → `X ...`; the api_server module passes its args as they are."""
    args = list(argv)
    if args and args[0] == "serve":
        return args[1:]
    return args


def _apply_rules(parsed: ParsedArgs) -> _Collected:
    table = rules()
    out = _Collected()
    for dest, value in parsed.values.items():
        spelled = parsed.spelled.get(dest, dest)
        outcome = apply(table[dest], value, spelled)
        out.args.extend(outcome.args)
        if outcome.dropped:
            out.dropped.append(Dropped(spelled, outcome.dropped))
        if outcome.warning:
            out.warnings.append(outcome.warning)
    return out


def _engine_program(env: Mapping[str, Any], python: str) -> tuple[str, ...]:
    if env["VLLM_SHIM_ENGINE_COMMAND"]:
        return tuple(env["VLLM_SHIM_ENGINE_COMMAND"])
    engine = env["VLLM_SHIM_ENGINE"]
    if engine not in ENGINE_PROGRAMS:
        raise CliError(f"environment variable VLLM_SHIM_ENGINE: {engine!r} is not one of {', '.join(ENGINE_PROGRAMS)}")
    return tuple(word.format(python=python) for word in ENGINE_PROGRAMS[engine])


def _model(parsed: ParsedArgs, warnings: list[str]) -> str:
    if parsed.model:
        return parsed.model
    warnings.append(f"no model given: serving vLLM's default {VLLM_DEFAULT_MODEL}")
    return VLLM_DEFAULT_MODEL


def translate(
    argv: Sequence[str], environ: Mapping[str, str], *, python: str = sys.executable, cpus: float | None = None
) -> Plan:
    """The plan for `vllm <argv>` in `environ`, on a pod of `cpus` CPUs (None: unknown, one middleware worker).
    Raises CliError (exit 2) for a command line vLLM or SGLang rejects."""
    parsed = parse(split_command(argv))
    env = read_env(environ)
    collected = _apply_rules(parsed)
    draft = Draft(parsed=parsed, env=env, model=_model(parsed, collected.warnings), cpus=cpus)
    for step in STEPS.values():
        step(draft)
    engine_args = (*draft.base_args(), *collected.args, *draft.args, *check_extra_args(env["SGLANG_EXTRA_ARGS"]))
    pd = pd_plan(engine_args, env, draft.ports)
    if pd is not None:
        draft.warnings.extend(pd_warnings(pd))
        draft.middleware = replace(
            draft.middleware, pd_role=pd.role, pd_bootstrap_port=pd.public_port, pd_room_timeout_s=pd.room_timeout_s
        )
    middleware = replace(
        draft.middleware,
        engine_url=f"http://127.0.0.1:{draft.ports.engine}",
        served_model_names=draft.served_names,
        model_path=draft.model,
        max_model_len=draft.max_model_len,
        api_keys=draft.api_keys,
        engine_secrets_file=f"{env['VLLM_SHIM_RUN_DIR']}/{ENGINE_SECRETS_FILE}",
        state_file=f"{env['VLLM_SHIM_RUN_DIR']}/{MIDDLEWARE_STATE_FILE}",
        max_body_bytes=env["VLLM_SHIM_MAX_BODY_BYTES"],
        vllm_version=VLLM_COMPAT_VERSION,
    )
    return Plan(
        model=draft.model,
        served_model_names=draft.served_names,
        host=draft.host,
        ports=draft.ports,
        engine_program=_engine_program(env, python),
        engine_args=pd_engine_args(engine_args, pd),
        dropped=tuple(collected.dropped + [Dropped(what, why) for what, why in draft.dropped]),
        warnings=tuple(collected.warnings + draft.warnings),
        middleware=middleware,
        run_dir=env["VLLM_SHIM_RUN_DIR"],
        drain_seconds=env["VLLM_SHIM_DRAIN_SECONDS"],
        middleware_workers=draft.middleware_workers,
        haproxy=env["VLLM_SHIM_HAPROXY"],
        python=python,
        engine_env=tuple(sorted(draft.engine_env.items())),
        headless=draft.headless,
        pd_bootstrap=(pd.public_port, pd.engine_port) if pd is not None and pd.relayed else None,
    )
