"""Prices in the declarative YAML become versions; re-applying an unchanged file adds none."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from billing.models import Price, PriceSource
from gateway_site.declarative.services import config_apply, config_load

pytestmark = [pytest.mark.django_db]

CONFIG = """
version: 1
providers:
  - name: priced-provider
    kind: openai
    base_url: http://127.0.0.1:9999/v1
deployments:
  - name: local-vllm
    provider: priced-provider
    upstream_model: llama-3.1-70b
    price: {input_per_mtok: %s, output_per_mtok: 0.40, gpu_hour_usd: 2.10}
  - name: listed
    provider: priced-provider
    upstream_model: gpt-4o-mini
"""


def _apply(tmp_path: Path, input_price: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG % input_price)
    config_apply(config_load(path))


def test_a_changed_price_in_the_file_is_a_new_version_and_an_unchanged_one_is_not(tmp_path):
    _apply(tmp_path, "0.40")
    _apply(tmp_path, "0.40")
    versions = Price.objects.filter(deployment__name="local-vllm").order_by("effective_from")
    assert [(p.input_per_mtok, p.gpu_hour_usd, p.source) for p in versions] == [
        (Decimal("0.4"), Decimal("2.1"), PriceSource.CONFIG)
    ]

    _apply(tmp_path, "0.50")

    assert [p.input_per_mtok for p in versions.all()] == [Decimal("0.4"), Decimal("0.5")]
    # A deployment without a price in the file is priced by the shipped list.
    assert not Price.objects.filter(deployment__name="listed").exists()
