"""A streamed call read straight off the gateway's aiohttp pool (`UpstreamClient.open_stream`)
behaves as it did through httpx: the same events, the same refusals and the same errors."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from routing.core.egress import EgressPolicy
from routing.core.egress_transport import OpenStream, egress_transport
from routing.core.errors import UpstreamError
from routing.core.providers.anthropic import AnthropicAdapter
from routing.core.providers.openai import OpenAIAdapter
from routing.core.types import Target
from routing.runtime import UpstreamClient

pytestmark = pytest.mark.asyncio


def _client(kind: str, *, loopback: bool = True, read_s: float = 5.0) -> UpstreamClient:
    policy = EgressPolicy.parse(["0.0.0.0/0"], allow_private=True, allow_loopback=loopback)
    transport = egress_transport(policy, kind=kind, limits=httpx.Limits(max_connections=4))
    return UpstreamClient(transport=transport, timeout=httpx.Timeout(read_s, connect=5.0))


def _target(base_url: str, kind: str = "openai") -> Target:
    return Target(
        deployment_id=1,
        deployment_name="d",
        provider_name="p",
        kind=kind,
        base_url=base_url,
        api_key="sk-test",
        upstream_model="m",
    )


def _payload(text: str = "Say three words.") -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], "stream": True}


_PER_ANSWER = {"id", "created", "system_fingerprint"}


def _comparable(event: bytes) -> Any:
    """An event as parsed JSON without the fields the mock makes up per answer."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in _PER_ANSWER}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    lines = [line for line in event.split(b"\n") if line.strip()]
    parsed = []
    for line in lines:
        name, _, data = line.partition(b":")
        data = data.strip()
        parsed.append((name, strip(orjson.loads(data)) if data.startswith(b"{") else data))
    return parsed


async def _events(adapter: Any, target: Target, payload: dict[str, Any]) -> tuple[list[bytes], Any]:
    stream = await adapter.chat_stream(target, payload, client_wants_usage=True)
    return [event async for event in stream.events], stream.tap


@pytest.mark.parametrize("adapter_class", [OpenAIAdapter, AnthropicAdapter])
async def test_the_pool_and_httpx_relay_the_same_events(
    mock_server: Any, adapter_class: Any
) -> None:
    kind = adapter_class.kind
    target = _target(
        f"{mock_server.base_url}/v1" if kind == "openai" else mock_server.base_url, kind
    )
    async with _client("aiohttp") as pooled, _client("httpx") as plain:
        opened = await pooled.open_stream(
            f"{mock_server.base_url}/v1/chat/completions", {}, b'{"model":"m","messages":[]}'
        )
        assert isinstance(opened, OpenStream)  # the direct path is the one taken
        await opened.aclose()
        direct, direct_tap = await _events(adapter_class(pooled), target, _payload())
        through_httpx, httpx_tap = await _events(adapter_class(plain), target, _payload())
    assert len(direct) > 2
    # The mock's ids and timestamps differ per answer; every other field of every event does not.
    assert [_comparable(e) for e in direct] == [_comparable(e) for e in through_httpx]
    assert direct_tap.content == httpx_tap.content and direct_tap.content
    assert direct_tap.usage == httpx_tap.usage and direct_tap.usage is not None


async def test_a_refused_address_is_refused_before_any_connection(mock_server: Any) -> None:
    port = mock_server.base_url.rsplit(":", 1)[1]
    async with _client("aiohttp", loopback=False) as client:
        with pytest.raises(UpstreamError) as failed:
            await OpenAIAdapter(client).chat_stream(
                _target(f"http://127.0.0.1:{port}/v1"), _payload(), client_wants_usage=False
            )
    assert failed.value.cause == "egress_refused"


async def test_a_provider_error_before_the_stream_is_its_own_status(mock_server: Any) -> None:
    async with _client("aiohttp") as client:
        with pytest.raises(UpstreamError) as failed:
            await OpenAIAdapter(client).chat_stream(
                _target(f"{mock_server.base_url}/v1"),
                _payload("[mock status=429 retry_after=7]"),
                client_wants_usage=False,
            )
    assert failed.value.status == 429 and failed.value.retry_after == 7
    assert b"error" in (failed.value.body or b"")


async def test_a_stream_cut_mid_way_is_reported_broken(mock_server: Any) -> None:
    async with _client("aiohttp") as client:
        stream = await OpenAIAdapter(client).chat_stream(
            _target(f"{mock_server.base_url}/v1"),
            _payload("[mock break_after_chunks=2]"),
            client_wants_usage=False,
        )
        received = []
        with pytest.raises(UpstreamError) as failed:
            async for event in stream.events:
                received.append(event)
    assert len(received) == 2
    assert failed.value.cause == "stream_broken"


async def test_a_silent_provider_is_reported_stalled_after_the_read_timeout(
    mock_server: Any,
) -> None:
    async with _client("aiohttp", read_s=0.5) as client:
        stream = await OpenAIAdapter(client).chat_stream(
            _target(f"{mock_server.base_url}/v1"),
            _payload("[mock fault=stall_after_start stall_ms=3000]"),
            client_wants_usage=False,
        )
        with pytest.raises(UpstreamError) as failed:
            async for _ in stream.events:
                pass
    assert failed.value.cause == "stream_stalled"
