"""A route's cache settings come from the YAML (and the management API) and reach the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway_site.declarative.services import config_apply, config_load
from routing.cache.core.policy import CachePolicy
from routing.table import load_routing_table

pytestmark = pytest.mark.django_db


def test_the_yaml_sets_a_routes_cache(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        """
providers:
  - {name: yaml-cache-provider, kind: openai, base_url: "https://y.example/v1"}
deployments:
  - {name: yaml-cache-model, provider: yaml-cache-provider, upstream_model: m}
routes:
  - alias: yaml-cached
    targets: [yaml-cache-model]
    cache: exact
    cache_ttl_seconds: 600
  - alias: yaml-uncached
    targets: [yaml-cache-model]
"""
    )
    config_apply(config_load(path))

    table = load_routing_table()
    assert table.resolve("yaml-cached").cache == CachePolicy("exact", 600, "tenant", 0.9)
    assert table.resolve("yaml-uncached").cache is None
