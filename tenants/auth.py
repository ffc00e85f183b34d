"""Authenticating a virtual key on the hot path: hash, then a short-lived in-process cache.

The cache keeps a revoked key working for at most GATEWAY_KEY_CACHE_SECONDS in each worker.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from gateway_site.db_threads import run_db
from routing.errors import GatewayError, unauthorized
from tenants.keys import hash_key
from tenants.models import ApiKey

_MAX_CACHED_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    """Who is calling: the key and where it belongs, as the proxy needs it."""

    key_id: int
    key_prefix: str
    key_name: str
    tenant_id: int
    tenant_slug: str
    team_id: int
    team_slug: str
    # Public model names this key may use; None means every model.
    allowed_models: frozenset[str] | None
    residency_region: str
    expires_at: datetime | None
    revoked: bool
    # Version pins, (public model name, deployment name or upstream model): team's, then key's.
    model_pins: tuple[tuple[str, str], ...] = ()
    # The non-empty allowed lists of tenant, team and key, each on its own: a list admits a name
    # it holds or the pattern route (`claude-*`) that serves it (docs/config.md).
    allowed_levels: tuple[frozenset[str], ...] = ()
    # A rotated key's newest successor (0: none): in its grace the old key is held to its
    # successor's key-level limits and budgets, so the two share one set of counters.
    successor_id: int = 0

    @property
    def quota_key_id(self) -> int:
        """The key whose key-level limits and budgets count this key's calls."""
        return self.successor_id or self.key_id

    def may_use(self, model: str, route: str = "") -> bool:
        """`route`: the alias of the route serving `model`, when that is a pattern route."""
        if self.allowed_models is None or model in self.allowed_models:
            return True
        if not route or route == model:
            return False
        levels = self.allowed_levels or (self.allowed_models,)
        return all(model in level or route in level for level in levels)

    def pin(self, model: str, route: str = "") -> str | None:
        """The pin for the name asked, else for the pattern route serving it."""
        pins = dict(self.model_pins)
        return pins.get(model) or (pins.get(route) if route else None)


def _allowed(*levels: list[str]) -> frozenset[str] | None:
    """What tenant, team and key all allow; an empty list at a level allows everything there."""
    allowed: frozenset[str] | None = None
    for models in levels:
        if models:
            allowed = frozenset(models) if allowed is None else allowed & frozenset(models)
    return allowed


def load_identity(key_hash: str) -> KeyIdentity | None:
    key = (
        ApiKey.objects.select_related("tenant", "team")
        .filter(key_hash=key_hash)
        .only(
            "id",
            "prefix",
            "name",
            "allowed_models",
            "model_pins",
            "expires_at",
            "revoked_at",
            "replaced_by_id",
            "tenant__id",
            "tenant__slug",
            "tenant__residency_region",
            "tenant__is_active",
            "tenant__allowed_models",
            "team__id",
            "team__slug",
            "team__allowed_models",
            "team__model_pins",
        )
        .first()
    )
    if key is None:
        return None
    return KeyIdentity(
        key_id=key.id,
        key_prefix=key.prefix,
        key_name=key.name,
        tenant_id=key.tenant.id,
        tenant_slug=key.tenant.slug,
        team_id=key.team.id,
        team_slug=key.team.slug,
        allowed_models=_allowed(
            key.tenant.allowed_models, key.team.allowed_models, key.allowed_models
        ),
        allowed_levels=tuple(
            frozenset(models)
            for models in (key.tenant.allowed_models, key.team.allowed_models, key.allowed_models)
            if models
        ),
        residency_region=key.tenant.residency_region,
        expires_at=key.expires_at,
        revoked=key.revoked_at is not None or not key.tenant.is_active,
        model_pins=tuple(sorted({**key.team.model_pins, **key.model_pins}.items())),
        successor_id=_newest_successor(key.replaced_by_id) if key.replaced_by_id else 0,
    )


def _newest_successor(key_id: int) -> int:
    """The end of a rotation chain from `key_id` (a key rotated again within its grace)."""
    seen = [key_id]
    while len(seen) < 100:
        found = ApiKey.objects.filter(pk=seen[-1]).values_list("replaced_by_id", flat=True).first()
        if found is None or found in seen:
            break
        seen.append(found)
    return seen[-1]


def bearer_token(request: HttpRequest) -> str:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized(
                "Malformed Authorization header: expected 'Authorization: Bearer <key>'.",
                "invalid_api_key",
            )
        return token.strip()
    # Anthropic's SDK sends the key in x-api-key.
    token = request.headers.get("x-api-key", "").strip()
    if not token:
        raise unauthorized(
            "Missing API key: pass your gateway key as 'Authorization: Bearer <key>'.",
            "missing_api_key",
        )
    return token


class KeyAuthenticator:
    def __init__(self, ttl_seconds: float | None = None) -> None:
        self.ttl = settings.GATEWAY.key_cache_seconds if ttl_seconds is None else ttl_seconds
        self._cache: dict[str, tuple[float, KeyIdentity | None]] = {}
        self._loading: dict[str, asyncio.Future[KeyIdentity | None]] = {}

    async def identify(self, token: str) -> KeyIdentity:
        key_hash = hash_key(token)
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and now - cached[0] < self.ttl:
            identity = cached[1]
        else:
            identity = await self._load(key_hash)
            if len(self._cache) >= _MAX_CACHED_KEYS:
                self._cache.clear()
            self._cache[key_hash] = (now, identity)
        if identity is None:
            raise unauthorized("Invalid API key.", "invalid_api_key")
        if identity.revoked:
            raise unauthorized(
                f"API key {identity.key_prefix}… has been revoked.", "revoked_api_key"
            )
        if identity.expires_at is not None and identity.expires_at <= timezone.now():
            raise unauthorized(
                f"API key {identity.key_prefix}… expired at {identity.expires_at.isoformat()}.",
                "expired_api_key",
            )
        return identity

    async def _load(self, key_hash: str) -> KeyIdentity | None:
        """One database lookup per key at a time, however many requests are waiting for it."""
        pending = self._loading.get(key_hash)
        if pending is None:
            pending = asyncio.ensure_future(run_db(lambda: load_identity(key_hash)))
            self._loading[key_hash] = pending
            pending.add_done_callback(lambda _: self._loading.pop(key_hash, None))
        return await asyncio.shield(pending)


__all__ = ["GatewayError", "KeyAuthenticator", "KeyIdentity", "bearer_token"]
