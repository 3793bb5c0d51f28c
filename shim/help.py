"""Help text for `vllm` and `vllm serve`, generated from the option and rule tables."""

from __future__ import annotations

from shim.env import ENV_VARS
from shim.options import vllm_options
from shim.rules import rules

USAGE = "usage: vllm serve [model_tag] [options]"


def top_help() -> str:
    return "\n".join(
        [
            "usage: vllm [-h] [-v] {serve} ...",
            "",
            "vLLM's command line, served by SGLang (vllm-to-sglang).",
            "",
            "  serve        start the OpenAI-compatible server (haproxy, middleware and SGLang under supervisord)",
            "  -v, --version",
        ]
    )


def _describe(dest: str) -> str:
    rule = rules()[dest]
    if rule.action == "map":
        return "→ SGLang " + " ".join(rule.flags)
    if rule.action == "plan":
        return "→ " + (rule.text or "decided by the shim")
    if rule.action == "reject":
        return "✗ not supported: " + rule.text
    return "dropped: " + rule.text


def serve_help() -> str:
    lines = [USAGE, "", "Options (vLLM 0.6 - 0.33 spellings; what SGLang gets for each):"]
    table = vllm_options()
    for dest in sorted(table.options):
        option = table.options[dest]
        if not option.current:
            continue
        flags = ", ".join(option.flags)
        lines.append(f"  {flags}\n      {option.help}\n      {_describe(dest)}")
    lines += ["", "Environment:"]
    lines += [f"  {var.name} (default {var.default!r}): {var.doc}" for var in ENV_VARS]
    return "\n".join(lines)
