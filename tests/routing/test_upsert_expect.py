"""The platform upserts' create-only and update-only modes (the console's new and edit forms)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from routing import services
from routing.evaluations.models import TaskCategory
from routing.evaluations.services import CategoryPrecondition, category_upsert
from routing.models import Deployment, Provider, Route

pytestmark = pytest.mark.django_db


def _provider(**kwargs: object) -> Provider:
    values: dict = {
        "name": "p",
        "kind": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "credential": "sk-1",
        "region": "",
        **kwargs,
    }
    return services.provider_upsert(**values)


def test_create_only_refuses_an_existing_name_and_changes_nothing() -> None:
    provider = _provider()
    with pytest.raises(services.Precondition) as refused:
        _provider(base_url="http://127.0.0.1:1/v1", credential="sk-2", expect="new")
    assert refused.value.status == 409
    provider.refresh_from_db()
    assert provider.base_url == "http://127.0.0.1:9/v1" and provider.get_credential() == "sk-1"

    dep = services.deployment_upsert(
        name="d",
        provider=provider,
        upstream_model="m",
        input_price_per_mtok=Decimal(1),
        output_price_per_mtok=Decimal(1),
    )
    with pytest.raises(services.Precondition):
        services.deployment_upsert(
            name="d",
            provider=provider,
            upstream_model="other",
            input_price_per_mtok=Decimal(1),
            output_price_per_mtok=Decimal(1),
            expect="new",
        )
    assert Deployment.objects.get(pk=dep.pk).upstream_model == "m"

    services.route_upsert(alias="r", description="a", deployments=[dep])
    with pytest.raises(services.Precondition):
        services.route_upsert(alias="r", description="b", deployments=[], expect="new")
    route = Route.objects.get(alias="r")
    assert route.description == "a" and route.targets.count() == 1

    category_upsert(name="c", threshold=0.5)
    with pytest.raises(CategoryPrecondition):
        category_upsert(name="c", threshold=0.9, expect="new")
    assert TaskCategory.objects.get(name="c").threshold == 0.5


def test_update_only_refuses_a_missing_name_and_creates_nothing() -> None:
    with pytest.raises(services.Precondition) as refused:
        _provider(name="ghost", expect="existing")
    assert refused.value.status == 412
    with pytest.raises(services.Precondition):
        services.route_upsert(alias="ghost", description="", deployments=[], expect="existing")
    with pytest.raises(CategoryPrecondition):
        category_upsert(name="ghost", threshold=0.5, expect="existing")
    assert not Provider.objects.filter(name="ghost").exists()
    assert not Route.objects.filter(alias="ghost").exists()
    assert not TaskCategory.objects.filter(name="ghost").exists()
    # The default (the YAML's and the API's PUT) still creates or replaces.
    assert _provider(name="ghost").pk and _provider(name="ghost", region="eu").region == "eu"
