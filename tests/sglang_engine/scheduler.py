"""A scripted stand-in for SGLang's scheduler subprocess: everything around it is SGLang's own code.

`launch_server(..., run_scheduler_process_func=run_scripted_scheduler)` starts this in the scheduler's place. It
speaks the scheduler's side of the IPC exactly: the ready handshake, TokenizedGenerateReqInput in, one
BatchTokenIDOutput per decode step out to the real DetokenizerManager, the control requests answered, and the
scheduler's Prometheus gauges written through SGLang's own collector. Requests run concurrently up to
--max-running-requests, the rest wait, so the queue gauges move as they do on a GPU.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import psutil
import zmq

from tests.sglang_engine.replies import LOGPROB_FIELDS, PER_REQUEST_FIELDS, control_reply
from tests.sglang_engine.script import Sequence, finish_reason, reply_text, token_logprobs

DEFAULT_TOKENS_PER_SECOND = 100.0  # ~10 ms a step: fast, yet slow enough that streamed chunks stay apart
METRICS_PERIOD = 0.25


def run_scripted_scheduler(server_args: Any, port_args: Any, gpu_id: int, tp_rank: int, pp_rank: int,
                           dp_rank: Any, pipe_writer: Any, *_: Any, **__: Any) -> None:  # fmt: skip
    """Same signature and start-up steps as sglang.srt.managers.scheduler.run_scheduler_process."""
    from sglang.srt.managers.scheduler import configure_scheduler_process, resolve_spawn_dp_rank
    from sglang.srt.runtime_context import SpawnRanks, publish, spawn_world_rank

    dp_rank = resolve_spawn_dp_rank(dp_rank)
    ranks = SpawnRanks(world_rank=spawn_world_rank(server_args, tp_rank=tp_rank, pp_rank=pp_rank),
                       dp_rank=dp_rank, gpu_id=gpu_id)  # fmt: skip
    publish(server_args, role="scheduler", ranks=ranks)
    configure_scheduler_process(server_args, gpu_id)
    if tp_rank != 0 or pp_rank != 0:
        # Other ranks of a -tp/-pp command line: ready, then idle; rank 0 alone talks to the tokenizer manager.
        pipe_writer.send(ScriptedScheduler.rank_info(server_args))
        _idle_until_parent_exits()
        return
    scheduler = ScriptedScheduler(server_args, port_args)
    pipe_writer.send(scheduler.init_info())
    scheduler.run()


def _idle_until_parent_exits() -> None:
    parent = psutil.Process().parent()
    while parent is not None and parent.is_running():
        time.sleep(1.0)


class ScriptedScheduler:
    def __init__(self, server_args: Any, port_args: Any) -> None:
        from sglang.srt.managers.scheduler_components.ipc_channels import SchedulerIpcChannels
        from transformers import AutoTokenizer

        self.args = server_args
        self.channels = SchedulerIpcChannels.create(
            port_args=port_args, is_rank_zero=True, skip_tokenizer_init=False,
            metrics_enabled=False, enable_scripted_runtime=False,
        )  # fmt: skip
        self.tokenizer = AutoTokenizer.from_pretrained(server_args.tokenizer_path or server_args.model_path)
        config = json.loads((Path(server_args.model_path) / "config.json").read_text())
        self.context_length, self.max_total_tokens = _token_limits(server_args)
        self.max_running = server_args.max_running_requests or 128
        self.eos_ids = {self.tokenizer.eos_token_id, config.get("eos_token_id")} - {None}
        tps = float(os.environ.get("VLLM_SHIM_SIM_TOKENS_PER_SECOND") or DEFAULT_TOKENS_PER_SECOND)
        self.step_seconds = 1.0 / tps if tps > 0 else 0.001
        self.running: list[Sequence] = []
        self.waiting: list[Sequence] = []
        self.paused = False
        self.loras: dict[str, str] = {}
        self.metrics = self._metrics_collector()
        self.metrics_at = 0.0

    def init_info(self) -> dict[str, Any]:
        return ScriptedScheduler.rank_info(self.args)

    @staticmethod
    def rank_info(server_args: Any) -> dict[str, Any]:
        """The ready handshake SGLang's launcher waits for (Scheduler.get_init_info)."""
        from sglang.srt.mem_cache.hicache_storage import disabled_l3_layout
        from sglang.srt.observability.startup_time import build_scheduler_startup_time

        startup = build_scheduler_startup_time(
            target_load_weight=0.0, draft_load_weight=0.0, kv_cache_allocation=0.0, scheduler_e2e=0.0,
            target_cuda_graph=None, draft_cuda_graph=None,
        )  # fmt: skip
        context_length, max_total_tokens = _token_limits(server_args)
        return {
            "status": "ready",
            "max_total_num_tokens": max_total_tokens,
            "max_req_input_len": min(context_length - 1, max_total_tokens - 1),
            "startup_time": startup,
            "hicache_object_layout": disabled_l3_layout("Hierarchical cache is disabled"),
        }

    def _metrics_collector(self) -> Any:
        if not self.args.enable_metrics:
            return None
        from sglang.srt.observability.metrics_collector import SchedulerMetricsCollector

        return SchedulerMetricsCollector.init_new(
            server_args=self.args, enable_priority_scheduling=False,
            enable_lora=bool(self.args.enable_lora), enable_hierarchical_cache=False,
        ).collector  # fmt: skip

    # ------------------------------------------------------------------ loop

    def run(self) -> None:
        parent = psutil.Process().parent()
        while parent is not None and parent.is_running():
            busy = bool(self.running or self.waiting) and not self.paused
            for request in self._receive(block=not busy):
                self._dispatch(request)
            if not self.paused:
                self._admit()
            self._log_metrics()  # here, as SGLang logs when it forms a batch: finished requests already replaced
            if not self.paused:
                self._step()
            if self.running and not self.paused:
                time.sleep(self.step_seconds)

    def _receive(self, block: bool) -> list[Any]:
        from sglang.srt.managers.io_struct import sock_recv

        socket = self.channels.recv_from_tokenizer
        if block and not socket.poll(timeout=200):
            return []
        received = []
        while True:
            try:
                received.append(sock_recv(socket, zmq.NOBLOCK))
            except zmq.ZMQError:
                return received

    def _admit(self) -> None:
        while self.waiting and len(self.running) < self.max_running:
            self.running.append(self.waiting.pop(0))

    def _step(self) -> None:
        """One decode step: every running request gets a token; the ones that stream or finish are sent."""
        emitted: list[Sequence] = []
        for seq in self.running:
            if not seq.finished:
                seq.output_ids.append(seq.next_token())
                seq.finished_reason = finish_reason(seq, self.eos_ids, self.tokenizer.decode)
            if seq.finished or seq.stream:
                emitted.append(seq)
        if emitted:
            self.channels.send_to_detokenizer.send_output(self._batch(emitted))
        self.running = [seq for seq in self.running if not seq.finished]

    # ------------------------------------------------------------- requests

    def _dispatch(self, request: Any) -> None:
        from sglang.srt.managers import io_struct as io

        if isinstance(request, io.BatchTokenizedGenerateReqInput):
            for item in request.batch:
                self._dispatch(item)
        elif isinstance(request, io.TokenizedGenerateReqInput):
            self.waiting.append(self._sequence(request))
        elif isinstance(request, io.FreezeGCReq):
            self.channels.send_to_detokenizer.send_output(request, request)
        else:
            reply = self._control(request, io)
            if reply is not None:
                self.channels.send_to_tokenizer.send_output(reply, request)

    def _sequence(self, req: Any) -> Sequence:
        prompt_ids = list(req.input_ids)
        prompt = req.input_text if isinstance(req.input_text, str) else self.tokenizer.decode(prompt_ids)
        plan = self.tokenizer.encode(reply_text(prompt, req.sampling_params), add_special_tokens=False)
        eos = self.tokenizer.eos_token_id
        return Sequence(rid=req.rid, http_worker_ipc=req.http_worker_ipc, prompt_ids=prompt_ids,
                        plan=[*plan, eos], sampling=req.sampling_params, stream=req.stream,
                        return_logprob=req.return_logprob, top_logprobs_num=req.top_logprobs_num)  # fmt: skip

    def _control(self, request: Any, io: Any) -> Any:
        if isinstance(request, io.AbortReq):
            for seq in [*self.running, *self.waiting]:
                if request.abort_all or seq.rid == request.rid:
                    seq.finished_reason = {"type": "abort", "message": "Abort before prefill",
                                           "status_code": None, "err_type": None}  # fmt: skip
            finished = [seq for seq in self.waiting if seq.finished]
            self.waiting = [seq for seq in self.waiting if not seq.finished]
            self.running.extend(finished)  # sent (with the abort reason) at the next step
            return None
        if isinstance(request, io.PauseGenerationReqInput):
            self.paused = True
            return None
        if isinstance(request, io.ContinueGenerationReqInput):
            self.paused = False
            return None
        if isinstance(request, io.GetInternalStateReq):
            return io.GetInternalStateReqOutput(internal_state=self._internal_state())
        return control_reply(request, io, self.loras)

    def _internal_state(self) -> dict[str, Any]:
        from sglang.srt.runtime_context import get_context
        from sglang.srt.utils.msgspec_utils import msgspec_to_builtins

        state = get_context().resolved_server_args_dict()
        state.pop("custom_sigquit_handler", None)
        state.update(effective_max_running_requests_per_dp=self.max_running, last_gen_throughput=0.0,
                     max_total_num_tokens=self.max_total_tokens, scripted_scheduler=True)  # fmt: skip
        return msgspec_to_builtins(state)  # type: ignore[no-any-return]

    # --------------------------------------------------------------- output

    def _batch(self, seqs: list[Sequence]) -> Any:
        from sglang.srt.managers.io_struct import BatchTokenIDOutput

        fields: dict[str, list[Any]] = {name: [] for name in PER_REQUEST_FIELDS}
        for seq in seqs:
            for name, value in self._fields(seq).items():
                fields[name].append(value)
        return BatchTokenIDOutput(**fields, output_token_entropy_val=None, output_token_sampling_mask=None,
                                  placeholder_tokens_idx=None, placeholder_tokens_val=None,
                                  dp_ranks=[0] * len(seqs))  # fmt: skip

    def _fields(self, seq: Sequence) -> dict[str, Any]:
        """One request's entries, filled the way SGLang's output streamer fills them."""
        surr = max(len(seq.prompt_ids) - 5, 0)  # INIT_INCREMENTAL_DETOKENIZATION_OFFSET
        decode_ids = seq.prompt_ids[surr:] + seq.output_ids
        new_ids = seq.output_ids[seq.sent_ids :]
        out = {
            "rids": seq.rid, "http_worker_ipcs": seq.http_worker_ipc, "finished_reasons": seq.finished_reason,
            "decoded_texts": "", "decode_ids": decode_ids[seq.sent_decode_ids :],
            "read_offsets": len(seq.prompt_ids) - surr, "output_ids": new_ids,
            "skip_special_tokens": seq.sampling.skip_special_tokens,
            "spaces_between_special_tokens": seq.sampling.spaces_between_special_tokens,
            "no_stop_trim": seq.sampling.no_stop_trim, "prompt_tokens": len(seq.prompt_ids),
            "reasoning_tokens": 0, "completion_tokens": len(seq.output_ids), "cached_tokens": 0,
            **self._logprob_fields(seq, new_ids),
            "output_hidden_states": None, "routed_experts": None, "indexer_topk": None, "retraction_counts": 0,
        }  # fmt: skip
        seq.sent_ids, seq.sent_decode_ids = len(seq.output_ids), len(decode_ids)
        return out

    def _logprob_fields(self, seq: Sequence, new_ids: list[int]) -> dict[str, Any]:
        empty = {name: [] for name in LOGPROB_FIELDS}
        if not seq.return_logprob:
            return empty
        vocab = len(self.tokenizer)
        per_token = [token_logprobs(t, seq.top_logprobs_num, vocab) for t in new_ids]
        return {**empty, "output_token_logprobs_val": [p[0] for p in per_token],
                "output_token_logprobs_idx": list(new_ids),
                "output_top_logprobs_val": [p[1] for p in per_token],
                "output_top_logprobs_idx": [p[2] for p in per_token]}  # fmt: skip

    def _log_metrics(self) -> None:
        if self.metrics is None or time.monotonic() - self.metrics_at < METRICS_PERIOD:
            return
        from sglang.srt.observability.metrics_collector import QueueCount, SchedulerStats

        used = sum(len(s.prompt_ids) + len(s.output_ids) for s in self.running)
        self.metrics.log_stats(SchedulerStats(
            num_running_reqs=QueueCount(total=len(self.running)), num_queue_reqs=QueueCount(total=len(self.waiting)),
            token_usage=used / self.max_total_tokens, num_used_tokens=used,
        ))  # fmt: skip
        self.metrics_at = time.monotonic()


def _token_limits(server_args: Any) -> tuple[int, int]:
    """(context length, KV pool size in tokens): the model config bounds the first, the pool is 8 contexts."""
    config = json.loads((Path(server_args.model_path) / "config.json").read_text())
    context_length = server_args.context_length or config["max_position_embeddings"]
    return context_length, server_args.max_total_tokens or 8 * context_length
