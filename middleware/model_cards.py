"""vLLM's `/v1/models` cards, built from the configuration plus what the engine reports (pure)."""

from __future__ import annotations

import uuid
from typing import Any

from middleware.config import MiddlewareConfig


def permission(now: int) -> dict[str, Any]:
    """vLLM's ModelPermission with its defaults; SGLang's cards have no `permission` list at all."""
    return {
        "id": f"modelperm-{uuid.uuid4().hex}",
        "object": "model_permission",
        "created": now,
        "allow_create_engine": False,
        "allow_sampling": True,
        "allow_logprobs": True,
        "allow_search_indices": False,
        "allow_view": True,
        "allow_fine_tuning": False,
        "organization": "*",
        "group": None,
        "is_blocking": False,
    }


def card(model_id: str, root: str, parent: str | None, max_model_len: int | None, now: int) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": now,
        "owned_by": "vllm",
        "root": root,
        "parent": parent,
        "max_model_len": max_model_len,
        "permission": [permission(now)],
    }


def _engine_cards(engine_models: Any) -> list[dict[str, Any]]:
    data = engine_models.get("data") if isinstance(engine_models, dict) else None
    return [c for c in data if isinstance(c, dict) and isinstance(c.get("id"), str)] if isinstance(data, list) else []


def engine_adapters(engine_models: Any) -> list[tuple[str, str]] | None:
    """(name, path) of each adapter in SGLang's `/v1/models` answer (cards with a parent); None if unusable."""
    if not isinstance(engine_models, dict) or not isinstance(engine_models.get("data"), list):
        return None
    return [(c["id"], str(c.get("root") or "")) for c in _engine_cards(engine_models) if c.get("parent")]


def engine_max_model_len(engine_models: Any) -> int | None:
    for c in _engine_cards(engine_models):
        if not c.get("parent") and isinstance(c.get("max_model_len"), int):
            return int(c["max_model_len"])
    return None


def model_cards(config: MiddlewareConfig, engine_models: Any, now: int) -> list[dict[str, Any]]:
    """One card per served name, then one per LoRA adapter (from the engine, else the startup list)."""
    max_len = config.max_model_len if config.max_model_len is not None else engine_max_model_len(engine_models)
    cards = [card(name, config.model_path, None, max_len, now) for name in config.served_model_names]
    adapters = engine_adapters(engine_models)
    if adapters is None:
        adapters = [(m.name, m.path) for m in config.lora_modules]
    cards += [card(name, path, config.served_model_name, None, now) for name, path in adapters]
    return cards


def not_found_message(model_id: str) -> str:
    return f"The model `{model_id}` does not exist."
