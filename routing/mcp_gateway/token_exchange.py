"""Tokens on behalf of the caller: OAuth 2.0 Token Exchange (RFC 8693) at a server's token endpoint.

An upstream that needs the end user's identity gets, on each call, an access token the gateway
obtained by exchanging the end user's own token (the *subject token*, which the agent passes in
`x-gateway-subject-token`) at the token endpoint configured for the server, authenticated with
the gateway's client credentials (HTTP Basic, RFC 6749 §2.3.1). The subject token goes to the
token endpoint only, never upstream; the client secret goes to the token endpoint only; the
exchanged token goes upstream only, never back to the agent.

Exchanged tokens are kept per worker, per server and per subject token (by its SHA-256, never the
token itself) until shortly before they expire. The token endpoint is reached through the
worker's egress-checked HTTP client, like the servers themselves.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict

import httpx

from routing.mcp_gateway.models import ACCESS_TOKEN_TYPE
from routing.mcp_gateway.oauth import EXPIRY_MARGIN_S, Held, TokenFailure, request_token
from routing.mcp_gateway.table import TokenExchange, Upstream

SUBJECT_HEADER = "x-gateway-subject-token"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
GRANT = "token_exchange"  # TokenFailure.grant, and the prefix of its kinds
MAX_HELD = 10_000
MAX_SUBJECT_TOKEN_CHARS = 8192

# The failures of an exchange are those of any token request (oauth.py).
ExchangeFailure = TokenFailure


def _cache_key(upstream: Upstream, exchange: TokenExchange, subject_token: str) -> str:
    parts = (
        str(upstream.id),
        exchange.token_url,
        exchange.client_id,
        exchange.audience,
        exchange.scope,
        subject_token,
    )
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class TokenExchanger:
    """One per worker (on its runtime's MCP gateway); holds exchanged tokens until they
    expire."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self._held: OrderedDict[str, Held] = OrderedDict()
        self.exchanges = 0  # token endpoint calls made (tests, logs)

    async def token_for(self, upstream: Upstream, subject_token: str) -> str:
        """The access token to send `upstream` for the end user whose token this is."""
        exchange = upstream.exchange
        assert exchange is not None
        if not subject_token:
            raise TokenFailure(
                "subject_token_missing",
                f"{upstream.name} acts as the end user: send the end user's token in the "
                f"{SUBJECT_HEADER} header",
                grant=GRANT,
            )
        key = _cache_key(upstream, exchange, subject_token)
        held = self._held.get(key)
        now = time.monotonic()
        if held is not None and held.until > now:
            self._held.move_to_end(key)
            return held.token
        self._held.pop(key, None)
        token, lifetime = await self._exchange(upstream, exchange, subject_token)
        if lifetime > EXPIRY_MARGIN_S:
            self._held[key] = Held(token, now + lifetime - EXPIRY_MARGIN_S)
            while len(self._held) > MAX_HELD:
                self._held.popitem(last=False)
        return token

    def forget(self, upstream: Upstream, subject_token: str, token: str) -> None:
        """Drop an exchanged token the server refused, unless already replaced."""
        if upstream.exchange is None:
            return
        key = _cache_key(upstream, upstream.exchange, subject_token)
        held = self._held.get(key)
        if held is not None and held.token == token:
            del self._held[key]

    async def _exchange(
        self, upstream: Upstream, exchange: TokenExchange, subject_token: str
    ) -> tuple[str, float]:
        form = {
            "grant_type": GRANT_TYPE,
            "subject_token": subject_token,
            "subject_token_type": exchange.subject_token_type,
            "requested_token_type": ACCESS_TOKEN_TYPE,
        }
        if exchange.audience:
            form["audience"] = exchange.audience
        if exchange.scope:
            form["scope"] = exchange.scope
        self.exchanges += 1
        return await request_token(
            self.http,
            upstream=upstream,
            token_url=exchange.token_url,
            client_id=exchange.client_id,
            client_secret=exchange.client_secret or "",
            form=form,
            grant=GRANT,
            refused_as="refused to act for the end user",
        )
