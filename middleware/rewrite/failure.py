"""What a rewrite rule that raises turns into: never a skipped rule, always an answer (fail closed).

A rule that cannot finish would otherwise let the request go to SGLang without what the client asked for
(a `structured_outputs` constraint SGLang ignores means unconstrained output with HTTP 200). The request
ends here instead, with vLLM's shape:

- the input is the cause (nesting beyond what the parser/encoder handles, a value Python cannot represent or
  convert): vLLM's 400, as vLLM answers a ValueError raised while handling a request;
- anything else is a bug on our side: a 500 whose cause is logged with its traceback.

Either way the app counts it as `vllm_shim:rewrite_failures_total{rule,status}`.
"""

from __future__ import annotations

from middleware.errors import VllmError, bad_request

TOO_DEEP = bad_request("The request body is nested too deeply.")
# orjson raises JSONEncodeError/JSONDecodeError (TypeError/ValueError subclasses) with this text at its depth cap.
_ORJSON_DEPTH = "Recursion limit"
# Client values Python cannot represent or convert (an int of 5,000 digits, a float('1e999') cast, bad UTF-8).
_INPUT_ERRORS = (ValueError, OverflowError)


def rule_failure(rule: str, exc: BaseException) -> VllmError:
    """The answer for `rule` raising `exc` on a client's body."""
    if isinstance(exc, RecursionError) or _ORJSON_DEPTH in str(exc):
        return TOO_DEEP
    if isinstance(exc, _INPUT_ERRORS):
        return VllmError(400, f"{type(exc).__name__}: {exc}"[:500], "BadRequestError")
    return VllmError(500, f"The request could not be translated for the engine (rule {rule!r} failed).",
                     "InternalServerError")
