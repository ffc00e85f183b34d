"""A cached answer, and how it is replayed: as a body or as an OpenAI-format SSE stream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

import orjson

JSON = dict[str, Any]
# Where the internal form carries provider-run tool calls (routing/core/stream_tap.py).
HOSTED_CALLS_KEY = "hosted_tool_calls"

# Replayed content goes out in pieces of this many characters: clients that render as text
# arrives still see a stream, and no event gets large.
REPLAY_PIECE = 64


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """The answer as its client was given it (internal chat.completion form), and its origin."""

    response: JSON
    request_id: str  # the request that paid for it
    deployment: str
    provider: str
    prompt: str  # "name@version" of the registry prompt, or ""
    cost_usd: str  # what it cost then: what each hit saves
    created_at: float = field(default_factory=time.time)

    def to_bytes(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_bytes(cls, raw: bytes) -> CachedAnswer | None:
        try:
            return cls(**orjson.loads(raw))
        except (orjson.JSONDecodeError, TypeError):
            return None  # written by another version of the gateway: a miss, not an error

    @property
    def cost(self) -> Decimal:
        return Decimal(self.cost_usd)

    def age_s(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.created_at


def complete(response: JSON) -> bool:
    """Only a whole answer is kept: one that stopped by itself or to call tools; never one a
    provider-run tool (a web search, ...) answered, which holds what the world said then."""
    choices = response.get("choices") or []
    return bool(choices) and all(
        isinstance(c, dict)
        and c.get("finish_reason") in ("stop", "tool_calls")
        and not (c.get("message") or {}).get(HOSTED_CALLS_KEY)
        for c in choices
    )


def replay_body(answer: CachedAnswer, request_id: str) -> JSON:
    """The answer under this request's id (a client may key on ids: never two with one)."""
    return {**answer.response, "id": "chatcmpl-" + request_id.removeprefix("req_")}


def _chunk(base: JSON, index: int, delta: JSON, finish: str | None = None) -> bytes:
    chunk = {**base, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _tool_deltas(calls: list[Any]) -> Iterator[JSON]:
    for position, call in enumerate(calls):
        yield {"tool_calls": [{"index": position, **call}]}


def replay_events(answer: CachedAnswer, request_id: str, *, include_usage: bool) -> Iterator[bytes]:
    """The answer as `chat.completion.chunk` events, as a provider would have streamed it."""
    body = replay_body(answer, request_id)
    base = {
        "id": body["id"],
        "object": "chat.completion.chunk",
        "created": body.get("created") or int(time.time()),
        "model": body.get("model") or "",
    }
    for choice in body.get("choices") or ():
        index = int(choice.get("index") or 0)
        message = choice.get("message") or {}
        yield _chunk(base, index, {"role": "assistant", "content": ""})
        content = message.get("content") or ""
        for start in range(0, len(content), REPLAY_PIECE):
            yield _chunk(base, index, {"content": content[start : start + REPLAY_PIECE]})
        for delta in _tool_deltas(message.get("tool_calls") or []):
            yield _chunk(base, index, delta)
        yield _chunk(base, index, {}, choice.get("finish_reason") or "stop")
    if include_usage and body.get("usage"):
        yield b"data: " + orjson.dumps({**base, "choices": [], "usage": body["usage"]}) + b"\n\n"
    yield b"data: [DONE]\n\n"
