"""The routing table: every public model name and the deployments behind it, cached per worker.

Loaded whole from the database (credentials decrypted once), then refreshed in the background
when older than GATEWAY_ROUTES_CACHE_SECONDS, so requests never wait on the ORM once warm.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.fernet import InvalidToken
from django.utils import timezone

from billing.prices import EffectivePrice, effective_prices, next_price_change
from gateway_site.snapshot import Snapshot
from routing.cache.core.policy import DEFAULT_SIMILARITY, CachePolicy
from routing.core.categories import CategoryPolicy, Scores
from routing.core.model_names import NamePatterns, is_pattern
from routing.core.strategy import RoutePlan
from routing.core.types import Target
from routing.evaluations.selectors import categories, latest_scores
from routing.models import Deployment, Route
from tenants.quotas.tokens import preload_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    public_name: str  # the name the client asked for
    route_alias: str  # "" when a deployment is asked for by its own name; a pattern's alias
    plan: RoutePlan
    cache: CachePolicy | None = None  # the route's, when it caches answers

    @property
    def targets(self) -> tuple[Target, ...]:
        return self.plan.targets


@dataclass(frozen=True, slots=True)
class RoutingTable:
    models: dict[str, ResolvedModel]
    # Routes whose alias is a pattern (`claude-*`), most specific first; not in `models`.
    patterns: NamePatterns = field(default_factory=NamePatterns)
    pattern_routes: dict[str, ResolvedModel] = field(default_factory=dict)
    # Task categories in priority order, and the latest evaluation scores (deployment x category).
    categories: dict[str, CategoryPolicy] = field(default_factory=dict)
    scores: Scores = field(default_factory=dict)
    # When the next price takes effect (then the table is loaded again), if one is scheduled.
    prices_change_at: datetime | None = None

    def resolve(self, name: str) -> ResolvedModel | None:
        """An exact route alias, else a deployment name, else the most specific pattern route
        (routing/core/model_names.py); the result keeps the name asked for."""
        exact = self.models.get(name)
        if exact is not None or not self.pattern_routes:
            return exact
        alias = self.patterns.match(name)
        if alias is None:
            return None
        return dataclasses.replace(self.pattern_routes[alias], public_name=name)


def _target(deployment: Deployment, price: EffectivePrice) -> Target:
    provider = deployment.provider
    return Target(
        deployment_id=deployment.id,
        deployment_name=deployment.name,
        provider_name=provider.name,
        kind=provider.kind,
        base_url=provider.base_url,
        api_key=provider.get_credential(),
        upstream_model=deployment.upstream_model,
        region=provider.region,
        input_price_per_mtok=price.input_per_mtok,
        output_price_per_mtok=price.output_per_mtok,
        cached_input_price_per_mtok=price.cached_input_per_mtok,
        request_price_usd=price.per_request_usd,
        tool_call_prices=price.per_tool_call_usd,
        capacity_rpm=provider.requests_per_minute,
        capacity_tpm=provider.tokens_per_minute,
        capacity_queue_s=provider.capacity_queue_seconds,
    )


def load_routing_table() -> RoutingTable:
    active = list(
        Deployment.objects.select_related("provider").filter(
            is_active=True, provider__is_active=True
        )
    )
    # Prices are versioned: the table carries those in force now, so requests never query them.
    now = timezone.now()
    prices = effective_prices(active, at=now)
    deployments = {}
    for deployment in active:
        try:
            deployments[deployment.id] = _target(deployment, prices[deployment.id])
        except InvalidToken:
            # One provider's credential sealed with a key this worker lacks must not take every
            # route down: its deployments are left out (and fail over), loudly.
            logger.error(
                "provider %s: its credential cannot be decrypted with GATEWAY_CREDENTIAL_KEYS; "
                "deployment %s is left out of routing",
                deployment.provider.name,
                deployment.name,
            )
    models = {
        target.deployment_name: ResolvedModel(
            target.deployment_name, "", RoutePlan(target.deployment_name, (target,), (1,))
        )
        for target in deployments.values()
    }
    # A route alias wins over a deployment of the same name: that is how a name gains fallbacks.
    pattern_routes: dict[str, ResolvedModel] = {}
    for route in Route.objects.filter(is_active=True).prefetch_related("targets"):
        live = [
            t
            for t in sorted(route.targets.all(), key=lambda t: t.position)
            if t.deployment_id in deployments
        ]
        if live:
            plan = RoutePlan(
                alias=route.alias,
                targets=tuple(deployments[t.deployment_id] for t in live),
                weights=tuple(t.weight for t in live),
                strategy=route.strategy,
                sticky=route.sticky,
                timeout_s=route.timeout_seconds,
                first_token_timeout_s=route.first_token_timeout_seconds,
                hosted_tools=route.hosted_tools,
                forward_hosted_tools=tuple(route.forward_hosted_tools or ()),
            )
            resolved = ResolvedModel(route.alias, route.alias, plan, _cache(route))
            if is_pattern(route.alias):
                pattern_routes[route.alias] = resolved
            else:
                models[route.alias] = resolved
    policies = {
        c.name: CategoryPolicy(
            c.name,
            c.threshold,
            strict=c.strict,
            pattern=re.compile(c.pattern, re.IGNORECASE) if c.pattern else None,
        )
        for c in categories()
    }
    scores = {key: row.score for key, row in latest_scores(deployments).items()}
    return RoutingTable(
        models=models,
        patterns=NamePatterns.of(pattern_routes),
        pattern_routes=pattern_routes,
        categories=policies,
        scores=scores,
        prices_change_at=next_price_change(after=now),
    )


def _cache(route: Route) -> CachePolicy | None:
    if route.cache_mode == Route.CacheMode.OFF:
        return None
    similarity = route.cache_similarity
    return CachePolicy(
        mode=route.cache_mode,
        ttl_s=route.cache_ttl_seconds,
        scope=route.cache_scope,
        similarity=DEFAULT_SIMILARITY if similarity is None else similarity,
    )


def _load_and_prepare() -> RoutingTable:
    """The table, with the tokenizers its deployments count with already built (in this thread,
    not on the event loop with the first request for them)."""
    table = load_routing_table()
    resolved = (*table.models.values(), *table.pattern_routes.values())
    preload_for(target.upstream_model for model in resolved for target in model.plan.targets)
    return table


class RoutingTableCache(Snapshot[RoutingTable]):
    """The worker's routing table: reloaded when the configuration changes, and when a price
    that was in the future takes effect."""

    def __init__(self, ttl_seconds: float | None = None) -> None:
        super().__init__(
            _load_and_prepare,
            ttl_seconds=ttl_seconds,
            name="routing table",
            expires=lambda table: table.prices_change_at,
        )
