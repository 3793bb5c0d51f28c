"""P/D against the real SGLang: the plan's engine arguments give SGLang's parser the role and the loopback
bootstrap port the shim decided, and the bodies middleware/pd.py sends are accepted with bootstrap_host/port/room
as fields SGLang declares (not extras it would drop)."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from middleware.pd import decode_fields, prefill_body, prefill_reply
from shim.translate import translate
from tests.contract.conftest import SGLangOracle

pytestmark = pytest.mark.contract

BODIES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "Qwen/Qwen3-8B", "messages": [{"role": "user", "content": "hi"}],
                             "max_tokens": 1, "stream_options": {"include_usage": True}},
    "/v1/completions": {"model": "Qwen/Qwen3-8B", "prompt": "hi", "max_tokens": 1},
}  # fmt: skip
BOOTSTRAP = ("bootstrap_host", "bootstrap_port", "bootstrap_room")


@pytest.mark.parametrize("role", ["prefill", "decode"])
def test_sglang_reads_the_role_and_the_loopback_bootstrap_port(sglang_oracle: SGLangOracle, role: str) -> None:
    extra = f"--disaggregation-mode {role} --disaggregation-bootstrap-port 9400"
    plan = translate(shlex.split("serve Qwen/Qwen3-8B --host 0.0.0.0 --port 9300"), {"SGLANG_EXTRA_ARGS": extra})
    parsed = sglang_oracle.parse_args(plan.engine_args)
    assert parsed["ok"], parsed["error"]
    args = parsed["args"]
    assert args["disaggregation_mode"] == role == plan.middleware.pd_role
    assert args["host"] == "127.0.0.1"
    # SGLang binds its bootstrap server there; decode pods are told the public port haproxy relays.
    expected = 9303 if role == "prefill" else 9400
    assert args["disaggregation_bootstrap_port"] == expected
    assert plan.middleware.pd_bootstrap_port == 9400


@pytest.mark.parametrize("route", sorted(BODIES))
def test_both_halves_are_valid_sglang_requests_with_declared_bootstrap_fields(sglang_oracle: SGLangOracle,
                                                                             route: str) -> None:  # fmt: skip
    assert set(BOOTSTRAP) <= set(sglang_oracle.request_fields()[route])
    room = 2**63 - 1
    prefill = prefill_body({**BODIES[route], "kv_transfer_params": {"do_remote_decode": True}}, room, 9400)
    params = {**prefill_reply(route, "Qwen/Qwen3-8B", room, 9400)["kv_transfer_params"], "remote_host": "10.1.2.3"}
    fields = decode_fields(params)
    assert isinstance(fields, dict)
    decode = {**BODIES[route], "stream": True, **fields}
    for body in (prefill, decode):
        verdict = sglang_oracle.validate(route, body, context_length=32768)
        assert verdict["ok"], verdict
