"""What the scripted "model" answers, and when a request stops: the decisions SGLang's scheduler owns.

Deterministic, so tests can predict it: a request with a JSON-schema constraint (response_format, guided_json,
or the schema SGLang builds for tool_choice "required" or a named tool) gets a small instance of the schema;
any other request gets the words of its last user turn echoed back (at least 8), then EOS, as `sim/` answers.
Stopping follows SGLang's order: stop token ids and EOS (unless ignore_eos), stop strings, then the length limit.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sim.textgen import echo_pieces, example_for_schema

# The generated chat template wraps every turn as <|role|>text<|end|> (tests/sglang_engine/model_dir.py).
USER_TURN = re.compile(r"<\|user\|>(.*?)<\|end\|>", re.S)
CHOSEN_LOGPROB = -0.25  # every scripted token is the most likely one; alternatives rank below it


def reply_text(prompt: str, sampling: Any) -> str:
    schema = getattr(sampling, "json_schema", None)
    if schema:
        return json.dumps(example_for_schema(json.loads(schema)), separators=(", ", ": "))
    turns = USER_TURN.findall(prompt)
    return "".join(echo_pieces(turns[-1] if turns else prompt))


@dataclass
class Sequence:
    """One request in flight: its plan, what was generated, and what was already sent downstream."""

    rid: str
    http_worker_ipc: str | None
    prompt_ids: list[int]
    plan: list[int]
    sampling: Any
    stream: bool
    return_logprob: bool
    top_logprobs_num: int
    output_ids: list[int] = field(default_factory=list)
    finished_reason: dict[str, Any] | None = None
    sent_ids: int = 0
    sent_decode_ids: int = 0

    @property
    def finished(self) -> bool:
        return self.finished_reason is not None

    def next_token(self) -> int:
        # With ignore_eos the plan repeats until the length limit, as a model that is not allowed to stop would.
        return self.plan[len(self.output_ids) % len(self.plan)]


def finish_reason(seq: Sequence, eos_ids: set[int], decode: Any) -> dict[str, Any] | None:
    """The stop decision after `seq` got its newest token, in the shape of SGLang's FINISH_* to_json()."""
    token = seq.output_ids[-1]
    params = seq.sampling
    if token in set(params.stop_token_ids or ()) or (token in eos_ids and not params.ignore_eos):
        return {"type": "stop", "matched": token}
    if params.stop_strs:
        text = decode(seq.output_ids)
        for stop in params.stop_strs:
            if stop and stop in text:
                return {"type": "stop", "matched": stop}
    if params.max_new_tokens is not None and len(seq.output_ids) >= params.max_new_tokens:
        return {"type": "length", "length": params.max_new_tokens}
    return None


def token_logprobs(token: int, top_n: int, vocab_size: int) -> tuple[float, list[float], list[int]]:
    """The chosen token's logprob and the top-n (value, id) lists, the chosen token first."""
    alternatives = [(token + k) % vocab_size for k in range(1, top_n)]
    values = [CHOSEN_LOGPROB] + [CHOSEN_LOGPROB - k for k in range(1, top_n)]
    return CHOSEN_LOGPROB, values[:top_n], ([token] + alternatives)[:top_n]
