"""vLLM's "prompt far beyond the context" refusal, before anything tokenizes it (issue 14 item 6).

vLLM's renderer (vllm/renderers/params.py `TokenizeParams._text_len_check`) refuses a text prompt of more
characters than `max_input_tokens * tokenizer.max_chars_per_token` without tokenizing it, where
`max_chars_per_token` is the length of the longest string in the tokenizer's vocabulary. SGLang has no such
check: a 20 MB prompt kept its tokenizer busy for more than 30 s before the length error. So the middleware
applies vLLM's rule to the parsed body, with vLLM's message.

- The longest vocabulary string is read from the model's `tokenizer.json` (a local model directory, or the
  Hugging Face cache), once, in a thread. Without one, `FALLBACK_CHARS_PER_TOKEN` stands in: larger than any
  common vocabulary's longest token, so the check never refuses what vLLM would accept.
- Counted: the chat messages' text (vLLM counts the rendered template, which is longer: refusing on the
  content alone never refuses what vLLM accepts), each completion prompt string, embedding inputs.
- `max_output_tokens` is taken as 0 (the whole context may be prompt): the weakest form of vLLM's bound.
- A request with `truncate_prompt_tokens` is not checked (vLLM skips the check then, too).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

import orjson

from middleware.errors import VllmError

FALLBACK_CHARS_PER_TOKEN = 1024
# Engine paths whose prompts vLLM's renderer checks (/invocations arrives here as chat or completions).
CHECKED_ROUTES = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/tokenize"})


def tokenizer_file(model_path: str) -> Path | None:
    """The model's tokenizer.json: in the model directory, or the newest HF-cache snapshot of a repo id."""
    local = Path(model_path) / "tokenizer.json"
    if local.is_file():
        return local
    if model_path.count("/") != 1 or os.path.isabs(model_path):
        return None
    home = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.expanduser("~/.cache/huggingface"), "hub"
    )
    repo = "models--" + model_path.replace("/", "--")
    found = sorted(glob.glob(os.path.join(home, repo, "snapshots", "*", "tokenizer.json")), key=os.path.getmtime)
    return Path(found[-1]) if found else None


def max_chars_per_token(model_path: str) -> int | None:
    """The longest vocabulary string of the model's tokenizer (vLLM's `max_chars_per_token`), None if unknown."""
    path = tokenizer_file(model_path)
    if path is None:
        return None
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    vocab = (data.get("model") or {}).get("vocab") if isinstance(data, dict) else None
    names: list[str] = []
    if isinstance(vocab, dict):
        names.extend(vocab)
    elif isinstance(vocab, list):  # Unigram: [[piece, score], ...]
        names.extend(item[0] for item in vocab if isinstance(item, list) and item and isinstance(item[0], str))
    names.extend(t["content"] for t in data.get("added_tokens") or () if isinstance(t, dict) and "content" in t)
    return max(map(len, names), default=None)


def prompt_chars(route: str, body: dict[str, Any]) -> int:
    """The most characters any one prompt of this request has (vLLM checks each prompt on its own)."""
    if route in ("/v1/chat/completions", "/tokenize") and isinstance(body.get("messages"), list):
        return sum(_message_chars(m) for m in body["messages"])
    value = body.get("prompt", body.get("input"))
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return max((len(v) for v in value if isinstance(v, str)), default=0)
    return 0


def _message_chars(message: Any) -> int:
    if not isinstance(message, dict):
        return 0
    content = message.get("content")
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return 0


def check(route: str, body: dict[str, Any], max_model_len: int, chars_per_token: int) -> VllmError | None:
    """vLLM's 400 when a prompt has more characters than the context can hold at `chars_per_token`."""
    if body.get("truncate_prompt_tokens") is not None:
        return None
    limit = max_model_len * chars_per_token
    chars = prompt_chars(route, body)
    if chars <= limit:
        return None
    message = (
        f"You passed {chars} input characters and requested 0 output tokens. However, the model's context "
        f"length is only {max_model_len} tokens, resulting in a maximum input length of {max_model_len} tokens "
        f"(at most {limit} characters). Please reduce the length of the input prompt. "
        f"(parameter=input_text, value={chars})"
    )
    return VllmError(400, message, "BadRequestError", "input_text")
