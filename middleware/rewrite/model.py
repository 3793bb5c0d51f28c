"""The `model` rule: vLLM's model-name check and LoRA selection, in SGLang's spelling.

vLLM serves every `--served-model-name` alias and each LoRA adapter under its own name, and answers 404 for
anything else (serve/engine/serving.py `_check_model`). SGLang knows one served name, selects an adapter
with `model: "<served>:<adapter>"` (serving_base.py `_parse_model_parameter`) and silently serves the base
model for any other string, so a vLLM-style adapter name would quietly lose its adapter.
"""

from __future__ import annotations

from middleware.errors import VllmError
from middleware.rewrite.base import Body, RewriteContext, RuleResult

_KEY = b'"model"'
_JSON_SPACE = b" \t\r\n"


def model(body: Body, ctx: RewriteContext) -> RuleResult:
    name = body.get("model")
    if not isinstance(name, str) or not name or name == ctx.served:
        return None  # absent or empty: vLLM serves the base model; non-strings fail validation on both sides
    if name in ctx.aliases:
        return {**body, "model": ctx.served}
    if name in ctx.adapters:
        return {**body, "model": f"{ctx.served}:{name}"}
    prefix = f"{ctx.served}:"
    if name.startswith(prefix) and name[len(prefix) :].strip() in ctx.adapters:
        return None  # already SGLang's spelling (a second pass over our own output)
    if ctx.skip_model_check:
        return None
    served = ", ".join(ctx.config.served_model_names)
    return VllmError(
        404, f"The model `{name}` does not exist. Valid aliases: {served}.", type="NotFoundError", param="model"
    )


def model_prefilter(raw: bytes, ctx: RewriteContext | None) -> bool:
    """False only when every `"model"` key in the raw body is followed by the served name's exact literal.

    Any other value (an alias, an adapter, an unknown name, an escaped spelling) or a `"model"` key nested
    elsewhere makes this answer True, which only costs a parse.
    """
    pos = raw.find(_KEY)
    if pos < 0:
        return False
    if ctx is None:
        return True
    literal = ctx.served_literal
    while pos >= 0:
        i = pos + len(_KEY)
        while i < len(raw) and raw[i] in _JSON_SPACE:
            i += 1
        if i >= len(raw) or raw[i] != 58:  # ':'
            return True
        i += 1
        while i < len(raw) and raw[i] in _JSON_SPACE:
            i += 1
        if not raw.startswith(literal, i):
            return True
        pos = raw.find(_KEY, i + len(literal))
    return False
