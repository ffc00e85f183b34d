"""Tokens the gateway obtains as itself: OAuth 2.0 client credentials (RFC 6749 §4.4).

A server configured with a token endpoint, a client id and a client secret gets, on each call, an
access token the gateway obtained at that endpoint, authenticated with HTTP Basic (§2.3.1). The
client secret goes to the token endpoint only; the access token goes to the server only, as
`Authorization: Bearer`, never back to the agent nor into a record or a log.

Tokens are held per worker, per server and settings, until shortly before they expire; one
request per server at a time asks for a new one (the others share its answer or its failure). A token the server
refuses (HTTP 401) is dropped and the call is tried once more with a new one (endpoint.py).

`request_token` is also how token_exchange.py (RFC 8693) reaches a token endpoint: both go
through the worker's egress-checked HTTP client, like the servers themselves, and neither follows
a redirect (the client's default), so the secret cannot be sent on to another host.

Hand-written rather than Authlib's `AsyncOAuth2Client` or the `mcp` SDK's
`ClientCredentialsOAuthProvider`: both bring their own HTTP client (the SDK's is httpx2), which
would bypass the shared pool and its egress policy, and the SDK's also runs the authorization
server discovery an upstream configured by URL does not need. The grant itself is one POST.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import dataclass
from urllib.parse import quote_plus

import httpx
import orjson

from routing.core.egress_transport import egress_refusal
from routing.mcp_gateway.table import ClientCredentials, Upstream

GRANT_TYPE = "client_credentials"
# A token is used until this long before its expiry; without `expires_in`, for DEFAULT_TTL_S.
EXPIRY_MARGIN_S = 30.0
DEFAULT_TTL_S = 60.0


class TokenFailure(Exception):
    """No token could be had. `kind` is stable (audit); the message never holds a secret or a
    token. `grant` is `client_credentials` or `token_exchange`."""

    def __init__(self, kind: str, message: str, *, grant: str = GRANT_TYPE) -> None:
        super().__init__(message)
        self.kind, self.message, self.grant = kind, message, grant


@dataclass(frozen=True, slots=True)
class Held:
    token: str
    until: float  # time.monotonic()


def basic_authorization(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1: both form-urlencoded, then Basic."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


async def request_token(
    http: httpx.AsyncClient,
    *,
    upstream: Upstream,
    token_url: str,
    client_id: str,
    client_secret: str,
    form: dict[str, str],
    grant: str,
    refused_as: str,
) -> tuple[str, float]:
    """POST `form` to the token endpoint; the access token and its lifetime in seconds, or
    TokenFailure (kinds `egress_refused`, `<grant>_refused`, `<grant>_failed`)."""
    headers = {
        "authorization": basic_authorization(client_id, client_secret),
        "accept": "application/json",
    }
    where = f"the token endpoint of {upstream.name}"
    try:
        response = await http.post(
            token_url, data=form, headers=headers, timeout=upstream.timeout_seconds
        )
    except httpx.HTTPError as exc:
        refusal = egress_refusal(exc)
        if refusal is not None:
            raise TokenFailure(
                "egress_refused", f"{where}: egress policy: {refusal}", grant=grant
            ) from None
        raise TokenFailure(f"{grant}_failed", f"{where} is unreachable", grant=grant) from None
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        body = {}
    if response.status_code != 200:
        # RFC 6749 §5.2: `error` is a code from a fixed list; it names no secret.
        error = str(body.get("error") or f"HTTP {response.status_code}")[:64]
        raise TokenFailure(f"{grant}_refused", f"{where} {refused_as} ({error})", grant=grant)
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenFailure(
            f"{grant}_failed", f"{where} answered without an access token", grant=grant
        )
    expires_in = body.get("expires_in")
    lifetime = (
        float(expires_in)
        if isinstance(expires_in, int | float) and expires_in > 0
        else DEFAULT_TTL_S
    )
    return token, lifetime


def _cache_key(upstream: Upstream, grant: ClientCredentials) -> str:
    # The secret is part of it: a token obtained before a change of settings is not reused.
    parts = (
        str(upstream.id),
        grant.token_url,
        grant.client_id,
        grant.client_secret or "",
        grant.scope,
        grant.audience,
    )
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class ClientCredentialsTokens:
    """One per worker (on its runtime's MCP gateway); holds each server's token until it
    expires."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self._held: dict[str, Held] = {}
        # One request to the endpoint per server at a time: a burst at expiry shares it, and
        # shares its failure too (waiting in turn would make the last caller wait N timeouts).
        self._pending: dict[str, asyncio.Task[str]] = {}
        self.requests = 0  # token endpoint calls made (tests, logs)

    async def token_for(self, upstream: Upstream) -> str:
        """The access token to send `upstream`, from the cache or the token endpoint."""
        grant = upstream.client_credentials
        assert grant is not None
        key = _cache_key(upstream, grant)
        held = self._held.get(key)
        if held is not None and held.until > time.monotonic():
            return held.token
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.get_running_loop().create_task(self._obtain(key, upstream, grant))
            self._pending[key] = pending
            pending.add_done_callback(lambda task: self._settled(key, task))
        # Shielded: a caller that goes away does not cancel the others' request.
        return await asyncio.shield(pending)

    def _settled(self, key: str, task: asyncio.Task[str]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if not task.cancelled():
            task.exception()  # retrieved here too: every waiter may have gone

    async def _obtain(self, key: str, upstream: Upstream, grant: ClientCredentials) -> str:
        now = time.monotonic()
        token, lifetime = await self._request(upstream, grant)
        if lifetime > EXPIRY_MARGIN_S:
            self._held[key] = Held(token, now + lifetime - EXPIRY_MARGIN_S)
        return token

    def forget(self, upstream: Upstream, token: str) -> None:
        """Drop `token` (the server refused it), unless another call already replaced it."""
        grant = upstream.client_credentials
        if grant is None:
            return
        key = _cache_key(upstream, grant)
        held = self._held.get(key)
        if held is not None and held.token == token:
            del self._held[key]

    async def _request(self, upstream: Upstream, grant: ClientCredentials) -> tuple[str, float]:
        form = {"grant_type": GRANT_TYPE}
        if grant.scope:
            form["scope"] = grant.scope
        if grant.audience:
            form["audience"] = grant.audience
        self.requests += 1
        return await request_token(
            self.http,
            upstream=upstream,
            token_url=grant.token_url,
            client_id=grant.client_id,
            client_secret=grant.client_secret or "",
            form=form,
            grant=GRANT_TYPE,
            refused_as="refused the gateway's client credentials",
        )
