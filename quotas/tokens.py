"""Counting tokens before forwarding (placeholder: estimates only; replaced by the tokenizer)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class TokenCount:
    tokens: int
    exact: bool


def count_chat_prompt_tokens(model: str, payload: dict[str, Any]) -> TokenCount:
    text = orjson.dumps([payload.get("messages"), payload.get("tools")])
    return TokenCount(math.ceil(len(text) / 4), exact=False)


def count_embedding_input_tokens(model: str, input: Any) -> TokenCount:
    return TokenCount(math.ceil(len(orjson.dumps(input)) / 4), exact=False)


def count_text_tokens(model: str, text: str) -> TokenCount:
    return TokenCount(math.ceil(len(text) / 4), exact=False)
