"""The scripted scheduler's decisions (tests/sglang_engine/script.py): what it answers and when it stops."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from tests.sglang_engine.script import CHOSEN_LOGPROB, Sequence, finish_reason, reply_text, token_logprobs

EOS = 1


def params(**overrides: Any) -> SimpleNamespace:
    base = {"stop_token_ids": None, "ignore_eos": False, "stop_strs": None, "max_new_tokens": 10, "json_schema": None}
    return SimpleNamespace(**{**base, **overrides})


def seq(output: list[int], **sampling: Any) -> Sequence:
    return Sequence(rid="r", http_worker_ipc=None, prompt_ids=[5], plan=[7, EOS], sampling=params(**sampling),
                    stream=False, return_logprob=False, top_logprobs_num=0, output_ids=output)  # fmt: skip


def decode(ids: list[int]) -> str:
    return " ".join(f"t{i}" for i in ids)


def test_reply_echoes_the_last_user_turn_or_fills_the_schema() -> None:
    prompt = "<s><|user|>first question<|end|><|assistant|>ok<|end|><|user|>where is Paris<|end|><|assistant|>"
    assert reply_text(prompt, params()).startswith("where is Paris where is Paris")
    schema = {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {"city": {"type": "string"}},
                                                        "required": ["city"]}}  # fmt: skip
    assert json.loads(reply_text(prompt, params(json_schema=json.dumps(schema)))) == [{"city": ""}]


def test_stop_order_is_sglangs_stop_ids_and_eos_then_strings_then_length() -> None:
    assert finish_reason(seq([3, EOS]), {EOS}, decode) == {"type": "stop", "matched": EOS}
    assert finish_reason(seq([3, EOS], ignore_eos=True), {EOS}, decode) is None
    assert finish_reason(seq([4], stop_token_ids=[4]), {EOS}, decode) == {"type": "stop", "matched": 4}
    assert finish_reason(seq([3, 9], stop_strs=["t9"]), {EOS}, decode) == {"type": "stop", "matched": "t9"}
    assert finish_reason(seq([3, 3], max_new_tokens=2), {EOS}, decode) == {"type": "length", "length": 2}
    assert finish_reason(seq([3], max_new_tokens=2), {EOS}, decode) is None


def test_ignore_eos_repeats_the_plan() -> None:
    s = seq([7, EOS])
    assert s.next_token() == 7


def test_chosen_token_is_the_top_logprob() -> None:
    value, tops, ids = token_logprobs(10, 3, 100)
    assert value == CHOSEN_LOGPROB == tops[0] and ids[0] == 10 and tops == sorted(tops, reverse=True)
    assert token_logprobs(10, 0, 100) == (CHOSEN_LOGPROB, [], [])
