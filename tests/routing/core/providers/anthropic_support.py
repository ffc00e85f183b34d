"""Shared by the adapter tests: a target, a payload, reading a stream, a replaying client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from routing.core.providers.base import ChatStream
from routing.core.types import Target

FIXTURES = Path(__file__).parents[1] / "translate" / "fixtures"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}]


def target(base_url: str, api_key: str = "sk-ant-test") -> Target:
    return Target(
        deployment_id=1,
        deployment_name="claude-eu",
        provider_name="anthropic",
        kind="anthropic",
        base_url=base_url,
        api_key=api_key,
        upstream_model="mock-claude",
    )


def chat_payload(text: str = "What is the weather in Paris today", **fields: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}]
    return {"model": "mock-claude", "messages": messages, **fields}


async def drain(stream: ChatStream) -> list[bytes]:
    return [event async for event in stream.events]


def chunks_of(events: list[bytes]) -> list[dict[str, Any]]:
    assert events[-1] == b"data: [DONE]\n\n"
    assert all(e.startswith(b"data: ") and e.endswith(b"\n\n") for e in events)
    return [orjson.loads(e[6:]) for e in events[:-1]]


def replaying(body: bytes, piece: int = 7, closed: list[bool] | None = None) -> httpx.AsyncClient:
    """A client whose provider answers every request with `body`, sent in small pieces;
    `closed` records when the response stream is closed."""

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), piece):
            yield body[start : start + piece]

    class Pieces(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for part in pieces():
                yield part

        async def aclose(self) -> None:
            if closed is not None:
                closed.append(True)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Pieces())

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))
