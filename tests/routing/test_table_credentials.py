"""A provider whose credential this worker cannot decrypt is left out; the others keep working."""

from __future__ import annotations

from decimal import Decimal

import pytest

from routing import services as routing
from routing.models import Provider
from routing.table import load_routing_table

pytestmark = pytest.mark.django_db


def test_one_undecryptable_credential_leaves_only_its_deployments_out() -> None:
    good = routing.provider_upsert(
        name="kept-llm",
        kind="openai",
        base_url="https://kept.example/v1",
        credential="sk-a",
        region="",
    )
    bad = routing.provider_upsert(
        name="sealed-elsewhere",
        kind="openai",
        base_url="https://other.example/v1",
        credential="x",
        region="",
    )
    for name, provider in (("kept-gpt", good), ("sealed-gpt", bad)):
        routing.deployment_upsert(
            name=name,
            provider=provider,
            upstream_model=name,
            input_price_per_mtok=Decimal(1),
            output_price_per_mtok=Decimal(1),
        )
    # Encrypted with a key this worker does not hold (a mistake in GATEWAY_CREDENTIAL_KEYS).
    Provider.objects.filter(pk=bad.pk).update(credential_encrypted="gAAAAABnot-our-key")

    table = load_routing_table()

    assert table.resolve("kept-gpt") is not None
    assert table.resolve("sealed-gpt") is None
