"""A model served by two versions, for tests of version pins that need no live provider."""

from __future__ import annotations

from decimal import Decimal

from routing import services as routing


def make_two_versions() -> None:
    """`pins-chat` routes to `pins-v1` (upstream `pins-model-2025`) and `pins-v2`
    (`pins-model-2026`); each deployment is a model by its own name too."""
    provider = routing.provider_upsert(
        name="pins-provider",
        kind="openai",
        base_url="http://127.0.0.1:9/v1",
        credential="",
        region="",
    )
    v1, v2 = (
        routing.deployment_upsert(
            name=f"pins-v{n}",
            provider=provider,
            upstream_model=f"pins-model-202{n + 4}",
            input_price_per_mtok=Decimal(1),
            output_price_per_mtok=Decimal(1),
        )
        for n in (1, 2)
    )
    routing.route_upsert(alias="pins-chat", description="", deployments=[v1, v2])
