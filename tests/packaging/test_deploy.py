"""deploy/: the production stack's values and VLLMRuntime, taken through the command line they produce.

`chart_command` is the engine container's `command:` as the vllm-stack chart (0.1.12,
helm/templates/deployment-vllm-multi.yaml) renders it, and `operator_command` the one the operator
(operator/internal/controller/vllmruntime_controller.go) builds. Both are then run through
`vllm-shim translate`. Template facts: /work/shared/reference/production-stack.md §1.1 and §2.1.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "deploy" / "production-stack-values.yaml"
RUNTIME = ROOT / "deploy" / "vllmruntime.yaml"
KUSTOMIZATION = ROOT / "deploy" / "production-stack" / "kustomization.yaml"
POST_RENDER = ROOT / "deploy" / "production-stack" / "post-render.sh"


# --- the chart -------------------------------------------------------------------------------------------


def go_value(value: Any) -> str:
    """Go's `%v`, which Helm's `quote` and `{{ }}` print with, of a value as Helm holds it.

    Helm decodes values YAML through JSON, so every number is a float64, and `%v` of a float64 is
    strconv's shortest 'g' form: exponent form from 1e+06 up and below 1e-04 (1048576 -> 1.048576e+06).
    """
    if value is None:
        return ""  # sprig's quote drops nil
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        number = float(value)
        if math.isinf(number) or math.isnan(number):
            return {math.inf: "+Inf", -math.inf: "-Inf"}.get(number, "NaN")
        digits = Decimal(repr(number)).normalize()
        exponent = digits.adjusted()
        if exponent < -4 or exponent >= 6:
            sign, mantissa, _ = digits.as_tuple()
            text = "".join(map(str, mantissa))
            head = text[0] + ("." + text[1:] if len(text) > 1 else "")
            return f"{'-' if sign else ''}{head}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
        return format(digits, "f")
    return str(value)


def go_quote(value: Any) -> str:
    """sprig's `quote` where its output stays literal (inside the single-quoted kv-transfer JSON)."""
    return "" if value is None else json.dumps(go_value(value))


def chart_command(values: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """The `command:` list the chart renders for one modelSpec entry (YAML-unquoted, as the container gets it)."""
    engine = values.get("servingEngineSpec", {})
    program = "/opt/venv/bin/vllm" if spec["repository"] == "lmcache/vllm-openai" else "vllm"
    port = engine.get("containerPort") or "8000"
    argv = [program, "serve", go_value(spec["modelURL"]), "--host", "0.0.0.0", "--port", go_value(port)]
    if spec.get("enableLoRA"):
        argv.append("--enable-lora")
    if spec.get("enableTool"):
        argv.append("--enable-auto-tool-choice")
    if spec.get("toolCallParser"):
        argv += ["--tool-call-parser", go_value(spec["toolCallParser"])]
    config = spec.get("vllmConfig") or {}
    if config:  # `with`: an empty or missing map emits nothing, not even --no-enable-prefix-caching
        if "enableChunkedPrefill" in config:
            argv.append("--enable-chunked-prefill" if config["enableChunkedPrefill"] else "--no-enable-chunked-prefill")
        argv.append("--enable-prefix-caching" if config.get("enablePrefixCaching") else "--no-enable-prefix-caching")
        for key, flag in (
            ("maxModelLen", "--max-model-len"),
            ("dtype", "--dtype"),
            ("tensorParallelSize", "--tensor-parallel-size"),
            ("maxNumSeqs", "--max-num-seqs"),
            ("gpuMemoryUtilization", "--gpu_memory_utilization"),
            ("maxLoras", "--max_loras"),
            ("runner", "--runner"),
            ("convert", "--convert"),
        ):
            if key in config:
                argv += [flag, go_value(config[key])]
        argv += [go_value(arg) for arg in config.get("extraArgs") or []]
    if spec.get("modelRevision"):
        argv += ["--revision", go_value(spec["modelRevision"])]
    lmcache = spec.get("lmcacheConfig") or {}
    if lmcache.get("enabled"):
        role = lmcache.get("kvRole") or "kv_both"
        if "enablePD" in lmcache:
            extra = f'{{"discard_partial_chunks": false, "lmcache_rpc_port": {go_quote(lmcache.get("nixlRole"))}}}'
            kv = f'{{"kv_connector":"LMCacheConnectorV1","kv_role":"{role}","kv_connector_extra_config":{extra}}}'
        elif "v0" in config and go_value(config["v0"]) == "1":
            kv = f'{{"kv_connector":"LMCacheConnector","kv_role":"{role}"}}'
        else:
            kv = f'{{"kv_connector":"LMCacheConnectorV1","kv_role":"{role}"}}'
        argv += ["--kv-transfer-config", kv]
    if spec.get("chatTemplate"):
        argv += ["--chat-template", f"/templates/{go_value(spec['chatTemplate'])}"]
    return argv


def test_go_value_prints_numbers_like_helm() -> None:
    assert [go_value(v) for v in (8000, 4096, 0.8, 0.95, 1, 100000, 1048576, 1000000, 0.0001, 0.00001)] == [
        "8000", "4096", "0.8", "0.95", "1", "100000", "1.048576e+06", "1e+06", "0.0001", "1e-05",
    ]  # fmt: skip
    assert [go_value(v) for v in (True, False, "bfloat16", -2.5)] == ["true", "false", "bfloat16", "-2.5"]


def test_chart_command_matches_the_charts_own_unit_tests() -> None:
    """helm/tests/deployment-vllm-multi_test.yaml: the minimal case and the lmcache case."""
    minimal = {"repository": "vllm/vllm-openai", "modelURL": "facebook/opt-125m"}
    assert " ".join(chart_command({}, minimal)) == "vllm serve facebook/opt-125m --host 0.0.0.0 --port 8000"
    lmcache = {
        "repository": "lmcache/vllm-openai",
        "modelURL": "facebook/opt-125m",
        "vllmConfig": {"enablePrefixCaching": True, "maxModelLen": 1024, "gpuMemoryUtilization": 0.8},
        "lmcacheConfig": {"enabled": True, "cpuOffloadingBufferSize": "10"},
    }
    assert " ".join(chart_command({}, lmcache)) == (
        "/opt/venv/bin/vllm serve facebook/opt-125m --host 0.0.0.0 --port 8000 --enable-prefix-caching "
        '--max-model-len 1024 --gpu_memory_utilization 0.8 --kv-transfer-config {"kv_connector":"LMCacheConnectorV1",'
        '"kv_role":"kv_both"}'
    )
    # Any non-empty vllmConfig without the key still yields the --no- flag; big integers come out as floats.
    tail = chart_command({}, {**minimal, "vllmConfig": {"maxModelLen": 1048576}})[7:]
    assert tail == ["--no-enable-prefix-caching", "--max-model-len", "1.048576e+06"]


# --- the operator ----------------------------------------------------------------------------------------


def operator_command(runtime: dict[str, Any]) -> list[str]:
    """Command + Args of the VLLMRuntime's container (ints with %d; zero values count as unset)."""
    model, config = runtime["spec"]["model"], runtime["spec"]["vllmConfig"]
    argv = ["/opt/venv/bin/vllm", "serve", model["modelURL"], "--host", "0.0.0.0", "--port", str(config.get("port", 0))]
    if model.get("enableLoRA"):
        argv.append("--enable-lora")
    if model.get("enableTool"):
        argv.append("--enable-auto-tool-choice")
    if model.get("toolCallParser"):
        argv += ["--tool-call-parser", model["toolCallParser"]]
    argv.append("--enable-chunked-prefill" if config.get("enableChunkedPrefill") else "--no-enable-chunked-prefill")
    argv.append("--enable-prefix-caching" if config.get("enablePrefixCaching") else "--no-enable-prefix-caching")
    for source, key, flag in (
        (model, "maxModelLen", "--max-model-len"),
        (model, "dtype", "--dtype"),
        (config, "tensorParallelSize", "--tensor-parallel-size"),
        (model, "maxNumSeqs", "--max-num-seqs"),
        (config, "gpuMemoryUtilization", "--gpu_memory_utilization"),
        (config, "maxLoras", "--max_loras"),
    ):
        if source.get(key):
            argv += [flag, str(source[key])]
    argv += config.get("extraArgs") or []
    if model.get("chatTemplate"):
        argv += ["--chat-template", "/etc/chat-template.json"]
    if runtime["spec"].get("lmCacheConfig", {}).get("enabled"):
        connector = "LMCacheConnectorV1" if config.get("v1") else "LMCacheConnector"
        argv += ["--kv-transfer-config", f'{{"kv_connector":"{connector}","kv_role":"kv_both"}}']
    return argv


# --- the files in deploy/ --------------------------------------------------------------------------------


def translate(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """`vllm-shim translate -- <argv after the program>`, from this checkout's code."""
    code = "import sys; from shim.cli import shim_main; sys.exit(shim_main())"
    proc = subprocess.run(
        [sys.executable, "-c", code, "translate", "--", *argv[1:]],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"{argv}\nexit {proc.returncode}: {proc.stderr}"
    return json.loads(proc.stdout)


def env_of(entries: list[dict[str, str]] | None) -> dict[str, str]:
    return {entry["name"]: entry["value"] for entry in entries or []}


def option(engine_args: list[str], flag: str) -> str | None:
    return engine_args[engine_args.index(flag) + 1] if flag in engine_args else None


def values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


def runtime() -> dict[str, Any]:
    return yaml.safe_load(RUNTIME.read_text())


def test_values_run_the_shim_image_through_the_charts_command() -> None:
    spec = values()["servingEngineSpec"]["modelSpec"][0]
    argv = chart_command(values(), spec)
    assert argv[:2] == ["vllm", "serve"], "the chart runs `vllm` from PATH for any repository but lmcache/vllm-openai"
    assert "--gpu_memory_utilization" in argv  # the chart's underscore spelling reaches the shim

    plan = translate(argv, env_of(spec.get("env")))
    args, config = plan["engine_args"], spec["vllmConfig"]
    assert plan["served_model_name"] == config["extraArgs"][config["extraArgs"].index("--served-model-name") + 1]
    assert plan["ports"]["public"] == 8000
    assert option(args, "--model-path") == spec["modelURL"]
    assert option(args, "--context-length") == go_value(config["maxModelLen"])
    assert option(args, "--mem-fraction-static") == go_value(config["gpuMemoryUtilization"])
    assert option(args, "--max-running-requests") == go_value(config["maxNumSeqs"])
    assert option(args, "--tool-call-parser") == spec["toolCallParser"]
    assert "--disable-radix-cache" not in args  # enablePrefixCaching: true
    assert plan["dropped"] == []


def test_runtime_runs_the_shim_image_through_the_operators_command() -> None:
    cr = runtime()
    argv = operator_command(cr)
    assert argv[:2] == ["/opt/venv/bin/vllm", "serve"]

    plan = translate(argv, env_of(cr["spec"]["vllmConfig"].get("env")))
    args, model, config = plan["engine_args"], cr["spec"]["model"], cr["spec"]["vllmConfig"]
    assert plan["served_model_name"] == config["extraArgs"][config["extraArgs"].index("--served-model-name") + 1]
    assert plan["ports"]["public"] == config["port"]
    assert option(args, "--model-path") == model["modelURL"]
    assert option(args, "--context-length") == str(model["maxModelLen"])
    assert option(args, "--mem-fraction-static") == config["gpuMemoryUtilization"]
    assert option(args, "--max-running-requests") == str(model["maxNumSeqs"])
    assert plan["dropped"] == []


def test_values_and_runtime_describe_the_same_deployment() -> None:
    spec, cr = values()["servingEngineSpec"]["modelSpec"][0], runtime()["spec"]
    assert spec["modelURL"] == cr["model"]["modelURL"]
    assert spec["vllmConfig"]["extraArgs"] == cr["vllmConfig"]["extraArgs"]
    assert spec["repository"] == f"{cr['deploymentConfig']['image']['registry']}/{spec['repository'].split('/')[-1]}"
    assert cr["deploymentConfig"]["image"]["name"] == f"{spec['repository'].split('/')[-1]}:{spec['tag']}"


def test_probes_hit_haproxys_health_and_give_sglang_time_to_load() -> None:
    engine = values()["servingEngineSpec"]
    for name in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = engine[name]
        assert probe["httpGet"] == {"path": "/health", "port": 8000}, name  # the template needs httpGet set
        assert probe.get("timeoutSeconds", 1) >= 2, f"{name}: leave room over the 1 s default"
        assert probe["initialDelaySeconds"] > 0, f"{name}: the chart turns 0 into its default 15"
    startup = engine["startupProbe"]
    assert startup["initialDelaySeconds"] + startup["failureThreshold"] * startup["periodSeconds"] >= 20 * 60


def grace_seconds() -> int:
    doc = yaml.safe_load(KUSTOMIZATION.read_text())
    (patch,) = doc["patches"]
    assert patch["target"] == {"kind": "Deployment", "labelSelector": "app.kubernetes.io/component=serving-engine"}
    (operation,) = yaml.safe_load(patch["patch"])
    assert operation["path"] == "/spec/template/spec/terminationGracePeriodSeconds"
    return int(operation["value"])


def test_grace_period_covers_the_drain_and_the_stop() -> None:
    """supervisord stops programs one after another, each for at most its stopwaitsecs; haproxy has already
    exited during the engine's drain. The grace period must outlast the rest, with a margin."""
    from shim.render import programs
    from shim.translate import translate as plan_for

    spec = values()["servingEngineSpec"]["modelSpec"][0]
    plan = plan_for(chart_command(values(), spec)[1:], env_of(spec.get("env")))
    stops = {program.name: program.stopwaitsecs for program in programs(plan)}
    worst = sum(seconds for name, seconds in stops.items() if name != "haproxy")
    assert grace_seconds() >= worst + 5, f"stopwaitsecs {stops}: grace {grace_seconds()} s < {worst} s + 5 s"


@pytest.mark.skipif(
    shutil.which("kubectl") is None,
    reason="needs kubectl (its built-in kustomize) to run the post-renderer",
)
def test_post_renderer_sets_the_grace_period_on_engine_deployments_only() -> None:
    manifests = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
         "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}
        for name, labels in (
            ("llm-qwen3-deployment-vllm", {"app.kubernetes.io/component": "serving-engine", "model": "qwen3"}),
            ("llm-deployment-router", {"app.kubernetes.io/component": "router"}),
        )
    ]  # fmt: skip
    proc = subprocess.run(
        [str(POST_RENDER)], input=yaml.safe_dump_all(manifests), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    grace = {d["metadata"]["name"]: d["spec"]["template"]["spec"].get("terminationGracePeriodSeconds")
             for d in yaml.safe_load_all(proc.stdout)}  # fmt: skip
    assert grace == {"llm-qwen3-deployment-vllm": grace_seconds(), "llm-deployment-router": None}


PD_VALUES = ROOT / "deploy" / "production-stack-pd-values.yaml"


def test_pd_values_give_each_half_its_role_and_the_router_the_orchestrated_logic() -> None:
    pd = yaml.safe_load(PD_VALUES.read_text())
    assert pd["routerSpec"]["routingLogic"] == "disaggregated_prefill_orchestrated"
    labels = pd["routerSpec"]["extraArgs"]
    roles = {}
    for spec in pd["servingEngineSpec"]["modelSpec"]:
        plan = translate(chart_command(pd, spec), env_of(spec.get("env")))
        args = plan["engine_args"]
        roles[spec["labels"]["model"]] = option(args, "--disaggregation-mode")
        assert any("disaggregated_prefill_orchestrated" in w for w in plan["warnings"])
    assert roles == {labels[1]: "prefill", labels[3]: "decode"}
