"""Generate the local model directory the scripted-scheduler server loads: no download, no weights.

A byte-level BPE tokenizer trained on a few sentences (deterministic), a chat template that renders tools, and a
Llama-style config whose max_position_embeddings bounds --context-length. Run with the server environment's
Python (it needs `tokenizers`):  python tests/sglang_engine/model_dir.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SPECIAL = ["<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>", "<|end|>"]
BOS, EOS = SPECIAL[0], SPECIAL[1]
MAX_POSITIONS = 32768
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "hello world, hi there: where is the city of Paris? The answer is here.",
    '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}',
    "one two three four five six seven eight nine ten token words text prompt reply",
]
# Tools are rendered into the prompt as JSON, so the scripted scheduler can see which tools a request offers.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if tools %}<|system|>TOOLS {{ tools | tojson }}<|end|>{% endif -%}"
    "{%- for m in messages -%}"
    "<|{{ m['role'] }}|>"
    "{%- if m['content'] is string %}{{ m['content'] }}"
    "{%- elif m['content'] %}{% for p in m['content'] %}{% if p['type'] == 'text' %}{{ p['text'] }}{% endif %}"
    "{%- endfor %}{% endif -%}"
    "<|end|>"
    "{%- endfor -%}"
    "{%- if add_generation_prompt %}<|assistant|>{% endif -%}"
)


def build_tokenizer() -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=SPECIAL, initial_alphabet=alphabet, show_progress=False
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer=trainer)
    return tokenizer


def write(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    tokenizer.save(str(out / "tokenizer.json"))  # type: ignore[attr-defined]
    vocab = tokenizer.get_vocab_size()  # type: ignore[attr-defined]
    ids = {tok: tokenizer.token_to_id(tok) for tok in (BOS, EOS)}  # type: ignore[attr-defined]
    tok_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "model_max_length": MAX_POSITIONS,
        "chat_template": CHAT_TEMPLATE,
        "added_tokens_decoder": {str(tokenizer.token_to_id(t)): {"content": t, "special": True} for t in SPECIAL},  # type: ignore[attr-defined]
    }
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "num_hidden_layers": 1,
        "vocab_size": vocab,
        "max_position_embeddings": MAX_POSITIONS,
        "bos_token_id": ids[BOS],
        "eos_token_id": ids[EOS],
        "rms_norm_eps": 1e-5,
        "torch_dtype": "float32",
    }
    generation = {"bos_token_id": ids[BOS], "eos_token_id": ids[EOS]}
    for name, body in (("tokenizer_config.json", tok_config), ("config.json", config),
                       ("generation_config.json", generation), ("special_tokens_map.json",
                       {"bos_token": BOS, "eos_token": EOS})):  # fmt: skip
        (out / name).write_text(json.dumps(body, indent=2) + "\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]))
