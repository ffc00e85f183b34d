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


def _apply(tmp_path: Path, input_price: str, config: str = CONFIG) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(config % input_price)
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


TOOL_PRICED = """
version: 1
providers:
  - name: responses-provider
    kind: openai-responses
    base_url: http://127.0.0.1:9999/v1
deployments:
  - name: searching
    provider: responses-provider
    upstream_model: gpt-4.1
    price: {input_per_mtok: 2, output_per_mtok: 8, per_tool_call_usd: %s}
"""


def _apply_tools(tmp_path: Path, tools: str) -> None:
    _apply(tmp_path, tools, TOOL_PRICED)


def test_a_price_per_provider_run_tool_call_is_versioned_like_the_rest(tmp_path):
    _apply_tools(tmp_path, '{web_search: "0.025", file_search: 0.0025}')
    _apply_tools(tmp_path, '{file_search: "0.00250", web_search: 0.025}')  # the same, reordered
    versions = Price.objects.filter(deployment__name="searching").order_by("effective_from")
    assert [p.per_tool_call_usd for p in versions] == [
        {"file_search": "0.0025", "web_search": "0.025"}
    ]

    _apply_tools(tmp_path, '{web_search: "0.01", file_search: "0.0025"}')

    assert [p.per_tool_call_usd["web_search"] for p in versions.all()] == ["0.025", "0.01"]


@pytest.mark.parametrize(
    "tools",
    ['{"Web Search": "0.01"}', '{web_search: "-0.01"}', '{web_search: "1000.01"}'],
)
def test_a_tool_price_that_is_not_one_is_refused_with_the_field_named(tmp_path, tools):
    path = tmp_path / "gateway.yaml"
    path.write_text(TOOL_PRICED % tools)
    with pytest.raises(Exception, match="per_tool_call_usd"):
        config_load(path)
    assert not Price.objects.filter(deployment__name="searching").exists()
