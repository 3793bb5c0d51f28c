"""Real client requests, before and after the middleware's rewrite, judged by SGLang's own validation.

Each file in corpus/ is one request as a real client sends it (openai-python, OpenClaw, LangChain, vLLM's
guided decoding, ...): `route`, `body`, what SGLang does with the RAW body (`sglang_raw`: accepts/rejects),
whether vLLM itself rejects it (`vllm`), and what the rewritten body must contain (`after`: dotted path →
value, `after_json`: path → value of a JSON string, `absent`: paths that must be gone).

- The raw verdict is checked both ways, so the corpus provably exercises SGLang's rejections, and documents
  what SGLang accepts only by silently ignoring it (the guided_* fields).
- After `rewrite()`, every body vLLM accepts must be accepted by SGLang, and every body vLLM rejects must
  come back with `result.error` set.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from middleware.config import MiddlewareConfig
from middleware.rewrite.route_rules import rewrite
from tests.contract.conftest import SGLangOracle

pytestmark = pytest.mark.contract

CORPUS = Path(__file__).with_name("corpus")
FILES = sorted(CORPUS.glob("*.json"))
ROUTES = ("/v1/chat/completions", "/v1/completions")
# The deployment every corpus request is sent to: `vllm serve Qwen/Qwen3-8B --served-model-name Qwen/Qwen3-8B qwen3
# --max-model-len 32768`.
CONFIG = MiddlewareConfig(
    served_model_names=("Qwen/Qwen3-8B", "qwen3"), model_path="Qwen/Qwen3-8B", max_model_len=32768
)
GUIDED_KEYS = ("guided_json", "guided_regex", "guided_choice", "guided_grammar", "structured_outputs")
SGLANG_CONSTRAINTS = ("regex", "ebnf", "json_schema", "response_format")
_MISSING = object()


def load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text())
    return case


def lookup(body: Any, path: str) -> Any:
    node = body
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node


def verdict(oracle: SGLangOracle, route: str, body: Any) -> dict[str, Any]:
    return oracle.validate(route, body, context_length=CONFIG.max_model_len)


def test_corpus_is_broad_enough() -> None:
    cases = [load(p) for p in FILES]
    assert len(cases) >= 25
    assert all(c["route"] in ROUTES for c in cases)
    assert all(
        c["sglang_raw"] in ("accepts", "rejects") and c.get("vllm", "accepts") in ("accepts", "rejects") for c in cases
    )
    assert sum(c["sglang_raw"] == "rejects" for c in cases) >= 10
    assert sum(c["route"] == "/v1/completions" for c in cases) >= 5
    assert sum(any(k in c["body"] for k in GUIDED_KEYS) for c in cases) >= 8
    assert any(c.get("vllm") == "rejects" for c in cases)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_raw_body_verdict(sglang_oracle: SGLangOracle, path: Path) -> None:
    case = load(path)
    result = verdict(sglang_oracle, case["route"], case["body"])
    if case["sglang_raw"] == "rejects":
        assert not result["ok"], "SGLang accepts the raw body: this corpus file no longer exercises a rejection"
        assert result["status"] == 400
    else:
        assert result["ok"], f"SGLang rejects the raw body ({result['stage']}): {result['error']}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_rewritten_body_is_accepted(sglang_oracle: SGLangOracle, path: Path) -> None:
    case = load(path)
    original = copy.deepcopy(case["body"])
    result = rewrite(case["route"], case["body"], CONFIG)
    assert case["body"] == original, "rewrite() mutated its input"
    if case.get("vllm") == "rejects":
        assert result.error is not None, "vLLM rejects this request; the middleware must answer the same 4xx"
        return
    assert result.error is None, f"the middleware rejects a request vLLM accepts: {result.error}"
    answer = verdict(sglang_oracle, case["route"], result.body)
    assert answer["ok"], f"after rules {result.rules}, SGLang rejects ({answer['stage']}): {answer['error']}"
    for key, want in case.get("after", {}).items():
        assert lookup(result.body, key) == want, f"{key} after rewrite"
    for key, want in case.get("after_json", {}).items():
        text = lookup(result.body, key)
        assert isinstance(text, str), f"{key} must be a JSON string, got {text!r}"
        assert json.loads(text) == want, f"{key} after rewrite"
    for key in case.get("absent", ()):
        assert lookup(result.body, key) is _MISSING, f"{key} must be gone after rewrite"


@pytest.mark.parametrize(
    "path",
    [p for p in FILES if any(k in load(p)["body"] for k in GUIDED_KEYS) and load(p).get("vllm") != "rejects"],
    ids=lambda p: p.stem,
)
def test_guided_decoding_survives_as_one_sglang_constraint(sglang_oracle: SGLangOracle, path: Path) -> None:
    """SGLang accepts guided_* / structured_outputs and drops them: only a translation keeps the constraint."""
    case = load(path)
    assert verdict(sglang_oracle, case["route"], case["body"])["ok"], "raw guided body: SGLang accepts and ignores it"
    body = rewrite(case["route"], case["body"], CONFIG).body
    assert not any(k in body for k in GUIDED_KEYS)
    present = [k for k in SGLANG_CONSTRAINTS if body.get(k) is not None]
    assert len(present) == 1, f"expected exactly one SGLang constraint, got {present}"
    if case["route"] == "/v1/chat/completions":
        assert "json_schema" not in body  # chat has no json_schema field: SGLang would drop it
    # The translated constraint reaches SGLang's sampling params: conflicting with a second one is rejected,
    # which proves the field is read, not ignored.
    clash = {**body, "ebnf": 'root ::= "x"'} if present != ["ebnf"] else {**body, "regex": "x"}
    rejected = verdict(sglang_oracle, case["route"], clash)
    assert not rejected["ok"] and "Only one of json_schema, regex, ebnf" in rejected["error"]
