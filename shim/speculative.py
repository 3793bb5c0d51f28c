"""The `speculative` plan step: vLLM's speculative decoding → SGLang's `--speculative-*` flags (issue 11).

vLLM proposes `num_speculative_tokens` per step. SGLang's EAGLE-family workers draft `--speculative-num-steps`
tokens along `--speculative-eagle-topk` branches and verify `--speculative-num-draft-tokens` (the chain plus
the root), so a chain of N is steps N, top-k 1, N + 1 draft tokens. NGRAM verifies N draft tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shim.errors import CliError
from shim.transforms import parse_int, parse_json_object, sglang_choices

# vLLM's method → SGLang's algorithm. vLLM's model-specific MTP names all end in "_mtp"; SGLang runs MTP
# heads through its EAGLE worker (NEXTN is its alias for that) with the target model's own MTP layers.
ALGORITHMS = {"eagle": "EAGLE", "eagle3": "EAGLE3", "ngram": "NGRAM", "mtp": "EAGLE", "draft_model": "STANDALONE"}
NO_COUNTERPART = {
    "medusa": "SGLang 0.5.23 has no Medusa heads",
    "mlp_speculator": "SGLang 0.5.23 has no MLP speculator",
    "suffix": "SGLang 0.5.23 has no suffix decoding",
}
# Keys read below, and keys that only tune vLLM's own implementation.
HANDLED = {"method", "model", "num_speculative_tokens", "prompt_lookup_max", "prompt_lookup_min", "revision"}
HANDLED |= {"quantization", "draft_tensor_parallel_size"}


@dataclass
class Speculative:
    args: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (what, why): listed and logged


def _config(values: Mapping[str, Any]) -> dict[str, Any]:
    raw = values.get("speculative_config")
    if raw is not None:
        return parse_json_object(raw, "--speculative-config")
    # vLLM ≤ 0.7.3's separate flags.
    model = values.get("speculative_model")
    if model is None:
        return {}
    config = {"model": model, "num_speculative_tokens": values.get("num_speculative_tokens")}
    if model == "[ngram]":
        config = {
            **config,
            "method": "ngram",
            "model": None,
            "prompt_lookup_max": values.get("ngram_prompt_lookup_max"),
        }
    config["draft_tensor_parallel_size"] = values.get("speculative_draft_tensor_parallel_size")
    config["quantization"] = values.get("speculative_model_quantization")
    return {k: v for k, v in config.items() if v is not None}


def _method(config: Mapping[str, Any]) -> str:
    """vLLM's method; without one, vLLM infers it from the draft model's name (eagle3/eagle/medusa) or a draft model."""
    method = str(config.get("method") or "").lower()
    if method:
        return "mtp" if method.endswith("_mtp") else method
    name = str(config.get("model") or "").lower()
    for known in ("eagle3", "eagle", "medusa", "mlp_speculator"):
        if known in name:
            return known
    if not name:
        raise CliError("argument --speculative-config: needs a method or a draft model")
    return "draft_model"


def _unsupported(algorithm: str, pp: int, attention_dp: bool, prefill: bool) -> str | None:
    """SGLang 0.5.23's launch checks for the layout (check_pipeline_parallel_compat, the speculative hooks)."""
    if pp > 1 and (algorithm != "EAGLE" or not prefill):
        return "SGLang runs speculative decoding with pipeline parallel only as EAGLE on a P/D prefill server"
    if attention_dp and algorithm in ("NGRAM", "STANDALONE"):
        return f"SGLang's {algorithm} speculative decoding does not run with attention data parallel"
    return None


def plan_speculative(
    values: Mapping[str, Any], tp: int, pp: int = 1, *, attention_dp: bool = False, prefill: bool = False
) -> Speculative:
    config = _config(values)
    out = Speculative()
    if not config:
        return out
    method = _method(config)
    if method in NO_COUNTERPART:
        out.dropped.append((f"speculative method {method}", NO_COUNTERPART[method] + ": the model runs without it"))
        return out
    if method not in ALGORITHMS:
        raise CliError(f"argument --speculative-config: unknown method {method!r}")
    why = _unsupported(ALGORITHMS[method], pp, attention_dp, prefill)
    if why:
        # Speculation only changes speed: the model serves the same outputs without it, so it is a listed drop.
        out.dropped.append((f"speculative method {method}", why + ": the model runs without it"))
        return out
    tokens = parse_int(config.get("num_speculative_tokens", 1 if method == "mtp" else 5), "num_speculative_tokens")
    out.args += ["--speculative-algorithm", ALGORITHMS[method]]
    if method == "ngram":
        out.args += ["--speculative-num-draft-tokens", str(tokens)]
        for key in ("prompt_lookup_max", "prompt_lookup_min"):
            if key in config:
                out.dropped.append((f"speculative {key}", "SGLang's n-gram drafter matches through its own trie"))
    else:
        out.args += _draft_model(config, method, out)
        out.args += ["--speculative-num-steps", str(tokens), "--speculative-eagle-topk", "1"]
        out.args += ["--speculative-num-draft-tokens", str(tokens + 1)]
    draft_tp = config.get("draft_tensor_parallel_size")
    if draft_tp is not None and parse_int(draft_tp, "draft_tensor_parallel_size") != tp:
        out.dropped.append(("speculative draft_tensor_parallel_size", f"SGLang runs the draft at the target's TP {tp}"))
    for key in sorted(set(config) - HANDLED):
        out.dropped.append((f"speculative {key}", "vLLM's own speculative-decoding setting; SGLang has no counterpart"))
    return out


def _draft_model(config: Mapping[str, Any], method: str, out: Speculative) -> list[str]:
    model = config.get("model")
    if not model:
        if method != "mtp":
            raise CliError(f"argument --speculative-config: method {method} needs a draft model")
        return []  # MTP: SGLang drafts with the target's own MTP layers
    args = ["--speculative-draft-model-path", str(model)]
    if config.get("revision"):
        args += ["--speculative-draft-model-revision", str(config["revision"])]
    quantization = config.get("quantization")
    if quantization:
        if quantization not in (sglang_choices("--speculative-draft-model-quantization") or ()):
            out.dropped.append(("speculative quantization", f"SGLang has no draft quantization {quantization!r}"))
        else:
            args += ["--speculative-draft-model-quantization", str(quantization)]
    return args
