"""The client credentials grant at the network boundary (httpx.MockTransport): what is sent where,
how often, and what a failure says."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import parse_qs

import httpx
import pytest

from routing.mcp_gateway.oauth import ClientCredentialsTokens, TokenFailure
from routing.mcp_gateway.table import ClientCredentials, Upstream

SECRET = "s3cret/with:odd&chars"


def _upstream(secret: str = SECRET, server_id: int = 1) -> Upstream:
    return Upstream(
        id=server_id,
        tenant_id=1,
        name="tickets",
        url="https://mcp.tickets.example/mcp",
        headers=(),
        timeout_seconds=5,
        max_result_bytes=1024,
        result_injection="block",
        client_credentials=ClientCredentials(
            token_url="https://idp.example/token",
            client_id="gw service",
            client_secret=secret,
            scope="tickets.read",
        ),
    )


def _tokens(handler: httpx.MockTransport) -> ClientCredentialsTokens:
    return ClientCredentialsTokens(httpx.AsyncClient(transport=handler))


def test_it_asks_once_for_a_burst_and_authenticates_with_basic() -> None:
    seen: list[httpx.Request] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        await asyncio.sleep(0.05)  # the burst arrives while the first request is out
        return httpx.Response(200, json={"access_token": "tok-1", "expires_in": 3600})

    tokens = _tokens(httpx.MockTransport(answer))

    async def burst() -> list[str]:
        return await asyncio.gather(*(tokens.token_for(_upstream()) for _ in range(20)))

    assert set(asyncio.run(burst())) == {"tok-1"}
    assert len(seen) == 1
    request = seen[0]
    assert str(request.url) == "https://idp.example/token"
    form = parse_qs(request.content.decode())
    assert form == {"grant_type": ["client_credentials"], "scope": ["tickets.read"]}
    scheme, _, encoded = request.headers["authorization"].partition(" ")
    # RFC 6749 §2.3.1: each part form-urlencoded before Basic.
    assert (scheme, base64.b64decode(encoded).decode()) == (
        "Basic",
        "gw+service:s3cret%2Fwith%3Aodd%26chars",
    )


def test_a_burst_against_a_failing_endpoint_shares_one_request_and_its_failure() -> None:
    seen: list[httpx.Request] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        await asyncio.sleep(0.05)
        return httpx.Response(401, json={"error": "invalid_client"})

    tokens = _tokens(httpx.MockTransport(answer))

    async def burst() -> list[BaseException | str]:
        calls = (tokens.token_for(_upstream()) for _ in range(20))
        return await asyncio.gather(*calls, return_exceptions=True)

    failures = asyncio.run(burst())
    assert len(seen) == 1  # not one after the other, each waiting for the last
    assert all(isinstance(f, TokenFailure) for f in failures)
    # Not remembered: the next call asks again.
    with pytest.raises(TokenFailure):
        asyncio.run(tokens.token_for(_upstream()))
    assert len(seen) == 2


def test_a_changed_secret_or_another_server_gets_a_token_of_its_own() -> None:
    count = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return httpx.Response(200, json={"access_token": f"tok-{count}", "expires_in": 3600})

    tokens = _tokens(httpx.MockTransport(answer))

    async def run() -> list[str]:
        return [
            await tokens.token_for(_upstream()),
            await tokens.token_for(_upstream()),
            await tokens.token_for(_upstream(secret="rotated")),
            await tokens.token_for(_upstream(server_id=2)),
        ]

    assert asyncio.run(run()) == ["tok-1", "tok-1", "tok-2", "tok-3"]


def test_a_forgotten_token_is_replaced_but_not_one_already_replaced() -> None:
    count = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return httpx.Response(200, json={"access_token": f"tok-{count}", "expires_in": 3600})

    tokens = _tokens(httpx.MockTransport(answer))

    async def run() -> list[str]:
        first = await tokens.token_for(_upstream())
        tokens.forget(_upstream(), first)
        second = await tokens.token_for(_upstream())
        tokens.forget(_upstream(), first)  # a late 401 for the old one: the new one stays
        return [first, second, await tokens.token_for(_upstream())]

    assert asyncio.run(run()) == ["tok-1", "tok-2", "tok-2"]


@pytest.mark.parametrize(
    ("response", "kind", "said"),
    [
        (httpx.Response(401, json={"error": "invalid_client"}), "refused", "(invalid_client)"),
        (
            httpx.Response(307, headers={"location": "https://elsewhere.example/token"}),
            "refused",
            "(HTTP 307)",
        ),
        (httpx.Response(200, json={"token_type": "Bearer"}), "failed", "without an access token"),
        (httpx.Response(200, content=b"<html>"), "failed", "without an access token"),
    ],
)
def test_a_failure_is_named_without_the_secret_and_no_redirect_is_followed(
    response: httpx.Response, kind: str, said: str
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response

    tokens = _tokens(httpx.MockTransport(answer))
    with pytest.raises(TokenFailure) as failure:
        asyncio.run(tokens.token_for(_upstream()))
    assert failure.value.kind == f"client_credentials_{kind}"
    assert failure.value.grant == "client_credentials"
    assert said in failure.value.message and SECRET not in failure.value.message
    assert [str(r.url) for r in seen] == ["https://idp.example/token"]  # nowhere else


def test_an_unreachable_endpoint_is_named() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(TokenFailure) as failure:
        asyncio.run(_tokens(httpx.MockTransport(answer)).token_for(_upstream()))
    assert failure.value.kind == "client_credentials_failed"
    assert failure.value.message == "the token endpoint of tickets is unreachable"
