"""Pseudo tokenizer and deterministic "model output".

One token per whitespace-separated word. The reply echoes the prompt's last user text, so a human watching the
demo can tell the answer belongs to the question, and tests can predict it.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

VOCAB_SIZE = 32000
EOS_TOKEN_ID = 2  # reported as `matched_stop` when the simulated model stops on its own
MIN_NATURAL_TOKENS = 8
FALLBACK_WORDS = ("token0", "token1", "token2", "token3", "token4", "token5", "token6", "token7")
JSON_PIECE_CHARS = 4


def words(text: str) -> list[str]:
    return text.split()


def token_id(word: str) -> int:
    # Ids 0..99 are left to "special tokens", as in real vocabularies.
    return 100 + zlib.crc32(word.encode("utf-8")) % (VOCAB_SIZE - 100)


class Vocab:
    """Remembers which word each id came from, so /detokenize can invert /tokenize."""

    def __init__(self, limit: int = 200_000) -> None:
        self._words: dict[int, str] = {}
        self._limit = limit

    def encode(self, text: str) -> list[int]:
        ids = []
        for w in words(text):
            tid = token_id(w)
            if len(self._words) < self._limit:
                self._words.setdefault(tid, w)
            ids.append(tid)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self._words.get(i, f"<tok{i}>") for i in ids)


def content_text(content: Any) -> str:
    """The text of a message `content`: a string, or the `text` of its text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(getattr(p, "text", None) or "") for p in content if getattr(p, "type", "") == "text")
    return ""


def chat_prompt(messages: Sequence[Any]) -> str:
    """A stand-in chat template: role markers count as tokens, like a real template's special tokens."""
    parts = [f"<|{m.role}|> {content_text(m.content)}" for m in messages]
    return " ".join([*parts, "<|assistant|>"])


def last_user_text(messages: Sequence[Any]) -> str:
    for m in reversed(messages):
        if m.role == "user":
            return content_text(m.content)
    return content_text(messages[-1].content) if messages else ""


def echo_pieces(source: str, offset: int = 0) -> list[str]:
    """The natural reply: the source words (at least MIN_NATURAL_TOKENS, cycling), then EOS.

    `offset` rotates the start so the n choices of one request differ, as sampled choices would.
    """
    src = words(source) or list(FALLBACK_WORDS)
    length = max(len(src), MIN_NATURAL_TOKENS)
    picked = [src[(offset + i) % len(src)] for i in range(length)]
    return [w if i == 0 else " " + w for i, w in enumerate(picked)]


def json_pieces(schema: Any) -> list[str]:
    text = json.dumps(example_for_schema(schema), separators=(", ", ": "))
    return [text[i : i + JSON_PIECE_CHARS] for i in range(0, len(text), JSON_PIECE_CHARS)]


def example_for_schema(schema: Any, depth: int = 0) -> Any:
    """A small instance of a JSON schema (good enough for typical response_format schemas)."""
    if not isinstance(schema, dict) or depth > 8:
        return {}
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example_for_schema(schema[key][0], depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else None)
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        required = schema.get("required") or list(props)
        return {k: example_for_schema(props.get(k, {}), depth + 1) for k in required if isinstance(k, str)}
    if kind == "array" and isinstance(schema.get("minItems"), int) and schema["minItems"] > 0:
        # e.g. the array SGLang constrains a forced tool choice to: at least one call
        return [example_for_schema(schema.get("items", {}), depth + 1)] * schema["minItems"]
    return {"string": "", "integer": 0, "number": 0, "boolean": False, "array": [], "null": None}.get(
        str(kind), {}
    )


def embedding(text: str, dims: int, seed: int) -> list[float]:
    """A deterministic unit vector per (text, seed)."""
    raw: list[float] = []
    counter = 0
    while len(raw) < dims:
        digest = hashlib.sha256(f"{seed}:{counter}:{text}".encode()).digest()
        raw.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    vec = raw[:dims]
    norm = sum(v * v for v in vec) ** 0.5 or 1.0
    return [v / norm for v in vec]


def overlap_score(query: str, document: str) -> float:
    """Rerank score: share of query words found in the document, nudged so ties are stable."""
    q = {w.lower() for w in words(query)}
    d = {w.lower() for w in words(document)}
    if not q:
        return 0.0
    nudge = (zlib.crc32(document.encode("utf-8")) % 1000) / 1e6
    return round(len(q & d) / len(q) + nudge, 6)
