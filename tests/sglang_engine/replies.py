"""The scripted scheduler's fixed tables and its answers to the admin control requests."""

from __future__ import annotations

from typing import Any

LOGPROB_FIELDS = tuple(
    f"{side}_{kind}_{part}"
    for side in ("input", "output")
    for kind in ("token_logprobs", "top_logprobs", "token_ids_logprobs")
    for part in ("val", "idx")
)
PER_REQUEST_FIELDS = (
    "rids", "http_worker_ipcs", "finished_reasons", "decoded_texts", "decode_ids", "read_offsets", "output_ids",
    "skip_special_tokens", "spaces_between_special_tokens", "no_stop_trim", "prompt_tokens", "reasoning_tokens",
    "completion_tokens", "cached_tokens", *LOGPROB_FIELDS, "output_hidden_states", "routed_experts", "indexer_topk",
    "retraction_counts",
)  # fmt: skip


def control_reply(request: Any, io: Any, loras: dict[str, str]) -> Any:
    """The answers to the admin requests the middleware sends; anything else is a test's mistake, loudly."""
    if isinstance(request, io.FlushCacheReqInput):
        return io.FlushCacheReqOutput(success=True)
    if isinstance(request, io.ReleaseMemoryOccupationReqInput):
        return io.ReleaseMemoryOccupationReqOutput()
    if isinstance(request, io.ResumeMemoryOccupationReqInput):
        return io.ResumeMemoryOccupationReqOutput()
    if isinstance(request, io.SetInternalStateReq):
        return io.SetInternalStateReqOutput(updated=False)
    if isinstance(request, io.LoadLoRAAdapterReqInput):
        loras[request.lora_name] = request.lora_path
        return io.LoRAUpdateOutput(success=True, loaded_adapters=dict(loras))
    if isinstance(request, io.UnloadLoRAAdapterReqInput):
        loras.pop(request.lora_name, None)
        return io.LoRAUpdateOutput(success=True, loaded_adapters=dict(loras))
    if isinstance(request, (io.SlowDownReqInput, io.ConfigureLoggingReq, io.ShutdownReq)):
        return None
    raise NotImplementedError(f"the scripted scheduler does not answer {type(request).__name__}")
