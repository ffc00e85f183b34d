"""The upstream client keeps no cookies: one client serves every tenant, so a cookie a provider
set while answering one tenant would otherwise be sent with the next tenant's request."""

from __future__ import annotations

import asyncio

import httpx

from routing.runtime import UpstreamClient


def test_a_cookie_a_provider_sets_is_never_sent_back() -> None:
    seen: list[str | None] = []

    def provider(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, json={}, headers={"set-cookie": "session=tenant-a; Path=/"})

    async def two_requests() -> None:
        async with UpstreamClient(transport=httpx.MockTransport(provider)) as client:
            await client.post("https://provider.example/v1/chat/completions", json={})
            await client.post("https://provider.example/v1/chat/completions", json={})
            assert not client.cookies

    asyncio.run(two_requests())
    assert seen == [None, None]


def test_a_plain_client_would_have_sent_it() -> None:
    # The test above can fail: httpx's own client replays the cookie.
    seen: list[str | None] = []

    def provider(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, json={}, headers={"set-cookie": "session=tenant-a; Path=/"})

    async def two_requests() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(provider)) as client:
            await client.post("https://provider.example/v1/chat/completions", json={})
            await client.post("https://provider.example/v1/chat/completions", json={})

    asyncio.run(two_requests())
    assert seen == [None, "session=tenant-a"]
