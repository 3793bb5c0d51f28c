#!/usr/bin/env python3
"""SGLang contract oracle: answers "would the real SGLang accept this?" using SGLang's own code.

Runs INSIDE the cached SGLang virtualenv built by `scripts/setup-sglang-env.sh`, never in the project's
environment (it imports `sglang`, which the project does not depend on). Batch protocol, one JSON object
per line:

    stdin:  {"op": "parse_args", "argv": [...]}
            {"op": "options"}                               (every option string of the parser)
            {"op": "validate_chat", "body": {...}}          (optional: "context_length", "vocab_size")
            {"op": "validate_completion", "body": {...}}    (same options)
            {"op": "validate_json_schema", "schema": {...}}  (the xgrammar backend's schema check)
            {"op": "version"}
    stdout: first a {"ready": true, ...} line once sglang is imported, then one answer line per request.

Only this process's protocol goes to the real stdout; anything SGLang prints goes to stderr.

What is called (see docs/contract-tests.md):
- parse_args: `argparse.ArgumentParser(prog="sglang serve")`, `ServerArgs.add_cli_args(parser)`,
  `parser.parse_args(argv)`, then `ServerArgs.from_cli_args(ns)` (in 0.5.23 the dataclass `__post_init__`
  is a no-op, so this builds the record with no side effect; `resolve_once()`, which loads the model's
  config and probes the device, is NOT run).
- validate_chat: `ChatCompletionRequest.model_validate(body)` (what FastAPI does for the route), the real
  `OpenAIServingChat._validate_request` (see `load_methods`), `request.to_sampling_params(...)`, then
  `SamplingParams(**params)`, `.normalize(tokenizer)`, `.verify(vocab_size)` as `TokenizerManager` does.
- validate_completion: `CompletionRequest.model_validate(body)`, the real `OpenAIServingCompletion.
  _validate_request` and `_build_sampling_params`, then the same SamplingParams checks.

`OpenAIServingChat` cannot be imported on a CPU-only install: `serving_base` imports `managers.io_struct`,
which pulls in the model executor (`schedule_batch` → `configs` → torchvision, `layers` → `sglang.kernels`
→ tvm_ffi, CUDA kernels). So `load_methods` compiles the needed methods from the installed
`serving_chat.py` source itself (same file, same line numbers in tracebacks), in a namespace holding the
module-level names those methods use, imported from the same modules `serving_chat.py` imports them from.
Only `get_serving()` / `get_model()` (the process-wide server config) are replaced, by a fixed default
config: no `--trust-request-chat-template`, no `--allow-auto-truncate`, context length from the request
(default: unknown, so that check is skipped).
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import dataclasses
import dis
import importlib.util
import io
import json
import os
import sys
import time
import traceback
import types
from typing import Any

DEFAULT_VOCAB_SIZE = 32000
PROTOCOL_VERSION = 1


# ---------------------------------------------------------------------------------------------------------
# Compiling real methods out of a module that cannot be imported here
# ---------------------------------------------------------------------------------------------------------


def _bound_names(stmt: ast.stmt) -> set[str]:
    """Module-level names a top-level statement binds."""
    names: set[str] = set()
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        for alias in stmt.names:
            names.add(alias.asname or alias.name.split(".")[0])
    elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(stmt.name)
    elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Name):
                    names.add(node.id)
    elif isinstance(stmt, (ast.Try, ast.If)):
        for child in ast.iter_child_nodes(stmt):
            if isinstance(child, ast.stmt):
                names |= _bound_names(child)
            elif isinstance(child, ast.ExceptHandler):
                for sub in child.body:
                    names |= _bound_names(sub)
    return names


def _referenced_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _global_loads(code: types.CodeType) -> set[str]:
    """Global names a compiled function really loads (nested code objects included)."""
    names: set[str] = set()
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            names.add(ins.argval)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_loads(const)
    return names


@dataclasses.dataclass
class LoadedClass:
    cls: type
    path: str
    methods: tuple[str, ...]
    module_names: tuple[str, ...]
    failed_imports: tuple[str, ...]


def load_methods(module_name: str, class_name: str, roots: tuple[str, ...], overrides: dict[str, Any]) -> LoadedClass:
    """Build `class_name` holding the real `roots` methods (and the `self.` methods they call) of `module_name`.

    The module file is read and compiled, not imported. The class is built without its base classes; a
    method that reaches for anything not provided fails loudly (NameError/AttributeError), it is never
    silently replaced.
    """
    spec = importlib.util.find_spec(module_name)
    if spec is None or not spec.origin:
        raise ImportError(f"{module_name} not found")
    path = spec.origin
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)

    top = [s for s in tree.body if not (isinstance(s, ast.ImportFrom) and s.module == "__future__")]
    binders: dict[str, list[int]] = {}
    for index, stmt in enumerate(top):
        for name in _bound_names(stmt):
            binders.setdefault(name, []).append(index)
    cls_node = next((s for s in top if isinstance(s, ast.ClassDef) and s.name == class_name), None)
    if cls_node is None:
        raise ImportError(f"class {class_name} not found in {path}")
    methods = {s.name: s for s in cls_node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}

    wanted: list[str] = []
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in wanted:
            continue
        if name not in methods:
            raise ImportError(f"{class_name}.{name} not found in {path}")
        wanted.append(name)
        for node in ast.walk(methods[name]):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and node.attr in methods
            ):
                stack.append(node.attr)

    # Module-level statements that bind a name the methods (transitively) refer to.
    selected: set[int] = set()
    pending = set().union(*(_referenced_names(methods[m]) for m in wanted))
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen or name in overrides or name == class_name:
            continue
        seen.add(name)
        for index in binders.get(name, ()):
            if index not in selected:
                selected.add(index)
                stmt = top[index]
                if not isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    pending |= _referenced_names(stmt)

    namespace: dict[str, Any] = {"__name__": f"{module_name}", "__file__": path, "__builtins__": builtins}
    failed: list[str] = []
    future = ast.ImportFrom(module="__future__", names=[ast.alias(name="annotations")], level=0)
    for index in sorted(selected):
        stmt = top[index]
        module = ast.fix_missing_locations(ast.Module(body=[future, stmt], type_ignores=[]))
        try:
            exec(compile(module, path, "exec"), namespace)
        except Exception as exc:  # an import the methods may not really need (a name that is only a local)
            failed.append(f"line {stmt.lineno}: {type(exc).__name__}: {exc}")
    namespace.update(overrides)

    new_cls = ast.ClassDef(name=class_name, bases=[], keywords=[], body=[methods[m] for m in wanted], decorator_list=[])
    if sys.version_info >= (3, 12):
        new_cls.type_params = []
    module = ast.fix_missing_locations(ast.Module(body=[future, new_cls], type_ignores=[]))
    exec(compile(module, path, "exec"), namespace)
    cls = namespace[class_name]

    # Every global the real methods (and the module functions they call) load must exist now.
    missing: set[str] = set()
    for value in [cls.__dict__[m] for m in wanted] + [namespace[n] for n in seen if n in namespace]:
        func = getattr(value, "__func__", value)
        code = getattr(func, "__code__", None)
        if code is None or getattr(func, "__globals__", None) is not namespace:
            continue
        for name in _global_loads(code):
            if name not in namespace and not hasattr(builtins, name):
                missing.add(name)
    if missing:
        raise ImportError(
            f"{module_name}.{class_name}: cannot resolve {sorted(missing)} needed by {wanted}; failed imports: {failed}"
        )
    return LoadedClass(cls, path, tuple(wanted), tuple(sorted(seen & set(namespace))), tuple(failed))


# ---------------------------------------------------------------------------------------------------------
# The oracle
# ---------------------------------------------------------------------------------------------------------


class ServerConfig:
    """Stands in for `runtime_context.get_serving()`: SGLang's defaults for the flags `_validate_request` reads."""

    trust_request_chat_template = False
    allow_auto_truncate = False
    default_chat_template_kwargs = None


class ModelConfig:
    """Stands in for `runtime_context.get_model()` and `tokenizer_manager.model_config` (text-only model)."""

    def __init__(self, context_length: int | None = None, vocab_size: int = DEFAULT_VOCAB_SIZE) -> None:
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.is_multimodal = False


class ByteTokenizer:
    """Stands in for the model's tokenizer in `SamplingParams.normalize`, which only measures stop strings
    with it (`encode(stop, add_special_tokens=False)`). `normalize(None)` would mean `--skip-tokenizer-init`,
    which rejects every `stop` string; the shim never runs SGLang that way."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(text.encode("utf-8"))


class Oracle:
    def __init__(self) -> None:
        import pydantic
        import sglang
        from sglang.srt.entrypoints.openai import protocol
        from sglang.srt.sampling.sampling_params import SamplingParams
        from sglang.srt.server_args import ServerArgs

        self.sglang = sglang
        self.pydantic = pydantic
        self.protocol = protocol
        self.ServerArgs = ServerArgs
        self.SamplingParams = SamplingParams
        self.model = ModelConfig()
        overrides = {"get_serving": lambda: ServerConfig, "get_model": lambda: self.model}
        self.chat_cls = load_methods(
            "sglang.srt.entrypoints.openai.serving_chat", "OpenAIServingChat", ("_validate_request",), overrides
        )
        self.completion_cls = load_methods(
            "sglang.srt.entrypoints.openai.serving_completions",
            "OpenAIServingCompletion",
            ("_validate_request", "_build_sampling_params"),
            overrides,
        )

    # -- helpers ------------------------------------------------------------------------------------------

    def _handler(self, loaded: LoadedClass) -> Any:
        handler: Any = object.__new__(loaded.cls)
        # The attributes `__init__` would set that the validation path reads (model type checks).
        handler.is_minimax_m3 = False
        handler.is_gpt_oss = False
        handler.tokenizer_manager = types.SimpleNamespace(model_config=self.model)
        return handler

    def _configure(self, request: dict[str, Any]) -> None:
        self.model = ModelConfig(request.get("context_length"), int(request.get("vocab_size") or DEFAULT_VOCAB_SIZE))

    def _sampling(self, params: dict[str, Any]) -> None:
        """What TokenizerManager._create_tokenized_object does with the params (no preferred params)."""
        sampling = self.SamplingParams(**params)
        sampling.normalize(ByteTokenizer())
        sampling.verify(self.model.vocab_size)

    @staticmethod
    def _reject(stage: str, error: str, status: int = 400) -> dict[str, Any]:
        return {"ok": False, "status": status, "error": error, "stage": stage}

    def _pydantic(self, model: Any, body: Any) -> tuple[Any, dict[str, Any] | None]:
        try:
            return model.model_validate(body), None
        except self.pydantic.ValidationError as exc:
            return None, self._reject("pydantic", f"{model.__name__}: {exc}")

    # -- operations ---------------------------------------------------------------------------------------

    def op_version(self, _request: dict[str, Any]) -> dict[str, Any]:
        import torch

        return {
            "ok": True,
            "version": self.sglang.__version__,
            "torch": torch.__version__,
            "pydantic": self.pydantic.VERSION,
            "protocol": PROTOCOL_VERSION,
            "compiled": {
                loaded.cls.__name__: {
                    "file": loaded.path,
                    "methods": list(loaded.methods),
                    "module_names": list(loaded.module_names),
                    "failed_imports": list(loaded.failed_imports),
                }
                for loaded in (self.chat_cls, self.completion_cls)
            },
        }

    def op_options(self, _request: dict[str, Any]) -> dict[str, Any]:
        """Every option string SGLang's parser defines (an emitted flag must be one, not an abbreviation)."""
        parser = argparse.ArgumentParser(prog="sglang serve")
        self.ServerArgs.add_cli_args(parser)
        return {"ok": True, "options": sorted(s for action in parser._actions for s in action.option_strings)}

    def op_parse_args(self, request: dict[str, Any]) -> dict[str, Any]:
        argv = request["argv"]
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise TypeError("argv must be a list of strings")
        parser = argparse.ArgumentParser(prog="sglang serve")
        self.ServerArgs.add_cli_args(parser)
        captured = io.StringIO()
        try:
            with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
                namespace = parser.parse_args(argv)
        except SystemExit as exc:
            # argparse prints the whole usage (hundreds of lines) before "sglang serve: error: ..."; keep the error.
            text = captured.getvalue().strip()
            marker = text.rfind(f"{parser.prog}: error:")
            return {"ok": False, "error": text[marker:] if marker >= 0 else text or f"exit {exc.code}", "args": None}
        args = vars(namespace)
        try:
            self.ServerArgs.from_cli_args(namespace)
        except Exception as exc:
            return {"ok": False, "error": f"ServerArgs.from_cli_args: {type(exc).__name__}: {exc}", "args": args}
        return {"ok": True, "error": None, "args": args, "from_cli_args": True}

    def op_request_fields(self, _request: dict[str, Any]) -> dict[str, Any]:
        """The fields SGLang's chat and completion request models declare (not extras it would ignore)."""
        return {route: sorted(model.model_fields) for route, model in (
            ("/v1/chat/completions", self.protocol.ChatCompletionRequest),
            ("/v1/completions", self.protocol.CompletionRequest))}  # fmt: skip

    def op_validate_chat(self, request: dict[str, Any]) -> dict[str, Any]:
        self._configure(request)
        parsed, rejected = self._pydantic(self.protocol.ChatCompletionRequest, request["body"])
        if rejected:
            return rejected
        message = self._handler(self.chat_cls)._validate_request(parsed)
        if message:
            return self._reject("_validate_request", message)
        stop = parsed.stop or []
        try:
            params = parsed.to_sampling_params(
                stop=[stop] if isinstance(stop, str) else list(stop),
                model_generation_config={},
                tool_call_constraint=None,
            )
            self._sampling(params)
        except ValueError as exc:
            return self._reject("sampling_params", str(exc))
        return {"ok": True, "status": 200, "error": None, "stage": None}

    def op_validate_completion(self, request: dict[str, Any]) -> dict[str, Any]:
        self._configure(request)
        parsed, rejected = self._pydantic(self.protocol.CompletionRequest, request["body"])
        if rejected:
            return rejected
        handler = self._handler(self.completion_cls)
        message = handler._validate_request(parsed)
        if message:
            return self._reject("_validate_request", message)
        try:
            self._sampling(handler._build_sampling_params(parsed))
        except ValueError as exc:
            return self._reject("sampling_params", str(exc))
        return {"ok": True, "status": 200, "error": None, "stage": None}

    def op_validate_json_schema(self, request: dict[str, Any]) -> dict[str, Any]:
        """The xgrammar backend's pre-compile check of a structured-output schema (the default backend's)."""
        from sglang.srt.constrained.json_schema_validation import validate_xgrammar_json_schema

        try:
            validate_xgrammar_json_schema(request["schema"])
        except ValueError as exc:  # UnsupportedJSONSchemaFeature
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "error": None}

    def handle(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            raise TypeError('a request is a JSON object with an "op"')
        method = getattr(self, f"op_{request['op']}", None)
        if method is None:
            raise ValueError(f"unknown op {request['op']!r}")
        return method(request)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return repr(value) if not isinstance(value, str) else value


def main(argv: list[str] | None = None, factory: Any = None) -> int:
    """The line protocol around `factory()` (default: Oracle); sglang_launch_oracle.py passes its own."""
    options = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    options.add_argument("--check", action="store_true", help="import, answer a few requests, print them, exit")
    args = options.parse_args(argv)

    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # whatever SGLang prints lands on stderr, never in the protocol stream

    def send(obj: dict[str, Any]) -> None:
        proto.write(json.dumps(obj, default=_jsonable) + "\n")
        proto.flush()

    started = time.monotonic()
    try:
        oracle = (factory or Oracle)()
    except BaseException as exc:
        send({"ready": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
        return 1
    send({"ready": True, "version": oracle.sglang.__version__, "import_seconds": round(time.monotonic() - started, 2)})

    if args.check and factory is None:
        probes = [
            {"op": "version"},
            {"op": "parse_args", "argv": ["--model-path", "m", "--tp-size", "2"]},
            {"op": "parse_args", "argv": ["--model-path", "m", "--pp", "2"]},
            {"op": "validate_chat", "body": {"messages": [{"role": "user", "content": "hi"}], "top_k": 0}},
            {"op": "validate_completion", "body": {"prompt": "hi", "max_tokens": 4}},
        ]
        expected = [True, True, False, False, True]
        answers = [oracle.handle(json.loads(json.dumps(p))) for p in probes]
        for probe, answer in zip(probes, answers, strict=True):
            shown = {k: v for k, v in answer.items() if k not in ("args", "compiled")}
            send({"probe": probe, "answer": shown})
        return 0 if [a["ok"] for a in answers] == expected else 1

    for line in sys.stdin:
        if not line.strip():
            continue
        request_id = None
        try:
            request = json.loads(line)
            request_id = request.get("id") if isinstance(request, dict) else None
            answer = oracle.handle(request)
        except Exception as exc:  # the oracle's own failure: never to be read as SGLang's verdict
            answer = {
                "ok": False,
                "internal": True,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        if request_id is not None:
            answer["id"] = request_id
        send(answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
