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

import base64
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import quote_plus

import httpx
import orjson

from routing.core.egress_transport import egress_refusal
from routing.mcp_gateway.models import ACCESS_TOKEN_TYPE
from routing.mcp_gateway.table import TokenExchange, Upstream

SUBJECT_HEADER = "x-gateway-subject-token"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
# A token is used until this long before its expiry; without `expires_in`, for DEFAULT_TTL_S.
EXPIRY_MARGIN_S = 30.0
DEFAULT_TTL_S = 60.0
MAX_HELD = 10_000
MAX_SUBJECT_TOKEN_CHARS = 8192


class ExchangeFailure(Exception):
    """No token could be had; `kind` is stable (audit). The message never holds a token."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


@dataclass(frozen=True, slots=True)
class _Held:
    token: str
    until: float  # time.monotonic()


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


def _basic(client_id: str, secret: str) -> str:
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


class TokenExchanger:
    """One per worker loop; holds exchanged tokens until they expire."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self.exchanges = 0  # token endpoint calls made (tests, logs)

    async def token_for(self, upstream: Upstream, subject_token: str) -> str:
        """The access token to send `upstream` for the end user whose token this is."""
        exchange = upstream.exchange
        assert exchange is not None
        if not subject_token:
            raise ExchangeFailure(
                "subject_token_missing",
                f"{upstream.name} acts as the end user: send the end user's token in the "
                f"{SUBJECT_HEADER} header",
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
            self._held[key] = _Held(token, now + lifetime - EXPIRY_MARGIN_S)
            while len(self._held) > MAX_HELD:
                self._held.popitem(last=False)
        return token

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
        headers = {
            "authorization": _basic(exchange.client_id, exchange.client_secret or ""),
            "accept": "application/json",
        }
        self.exchanges += 1
        try:
            response = await self.http.post(
                exchange.token_url, data=form, headers=headers, timeout=upstream.timeout_seconds
            )
        except httpx.HTTPError as exc:
            refusal = egress_refusal(exc)
            if refusal is not None:
                raise ExchangeFailure("egress_refused", f"egress policy: {refusal}") from None
            raise ExchangeFailure(
                "token_exchange_failed", f"the token endpoint of {upstream.name} is unreachable"
            ) from None
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            body = {}
        if response.status_code != 200:
            # RFC 6749 §5.2: `error` is a code from a fixed list; it names no token.
            error = str(body.get("error") or f"HTTP {response.status_code}")[:64]
            raise ExchangeFailure(
                "token_exchange_refused",
                f"the token endpoint of {upstream.name} refused to act for the end user ({error})",
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise ExchangeFailure(
                "token_exchange_failed",
                f"the token endpoint of {upstream.name} answered without an access token",
            )
        expires_in = body.get("expires_in")
        lifetime = (
            float(expires_in)
            if isinstance(expires_in, int | float) and expires_in > 0
            else DEFAULT_TTL_S
        )
        return token, lifetime
