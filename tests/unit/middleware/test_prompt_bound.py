"""vLLM's prompt-length bound (renderers/params.py `_text_len_check`), applied before anything tokenizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from middleware import prompt_bound
from middleware.prompt_bound import check, max_chars_per_token, prompt_chars, tokenizer_file


def write_tokenizer(directory: Path, vocab: dict[str, int] | list[list[object]], added: tuple[str, ...] = ()) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    data = {"model": {"type": "BPE", "vocab": vocab}, "added_tokens": [{"content": a} for a in added]}
    path = directory / "tokenizer.json"
    path.write_text(json.dumps(data))
    return path


def test_longest_vocabulary_string_as_vllm_computes_it(tmp_path: Path) -> None:
    write_tokenizer(tmp_path / "bpe", {"a": 0, "Ġhello": 1, "xyz": 2}, added=("<|endoftext|>",))
    assert max_chars_per_token(str(tmp_path / "bpe")) == len("<|endoftext|>")
    write_tokenizer(tmp_path / "unigram", [["▁abc", -1.0], ["d", -2.0]])
    assert max_chars_per_token(str(tmp_path / "unigram")) == 4
    assert max_chars_per_token(str(tmp_path / "none")) is None


def test_hf_cache_snapshot_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    path = write_tokenizer(tmp_path / "models--org--name" / "snapshots" / "abc", {"abcdef": 0})
    assert tokenizer_file("org/name") == path
    assert max_chars_per_token("org/name") == 6
    assert tokenizer_file("/abs/path") is None


@pytest.mark.parametrize(
    ("route", "body", "chars"),
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "abc"},
                                               {"role": "user", "content": [{"type": "text", "text": "de"}]}]}, 5),
        ("/v1/completions", {"prompt": "abcd"}, 4),
        ("/v1/completions", {"prompt": ["ab", "abcdef", [1, 2]]}, 6),  # each prompt on its own
        ("/v1/embeddings", {"input": "abc"}, 3),
        ("/v1/completions", {"prompt": [1, 2, 3]}, 0),  # token ids: nothing to count
    ],
)  # fmt: skip
def test_prompt_chars(route: str, body: dict[str, object], chars: int) -> None:
    assert prompt_chars(route, body) == chars


def test_vllms_message_and_bound() -> None:
    assert check("/v1/completions", {"prompt": "x" * 40}, 10, 4) is None
    error = check("/v1/completions", {"prompt": "x" * 41}, 10, 4)
    assert error is not None and error.status == 400 and error.param == "input_text"
    assert error.message == (
        "You passed 41 input characters and requested 0 output tokens. However, the model's context length is "
        "only 10 tokens, resulting in a maximum input length of 10 tokens (at most 40 characters). Please reduce "
        "the length of the input prompt. (parameter=input_text, value=41)"
    )
    assert check("/v1/completions", {"prompt": "x" * 41, "truncate_prompt_tokens": 5}, 10, 4) is None


def test_fallback_never_refuses_what_a_real_vocabulary_allows() -> None:
    assert prompt_bound.FALLBACK_CHARS_PER_TOKEN >= 256
