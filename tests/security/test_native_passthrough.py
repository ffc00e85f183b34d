"""A native (untranslated) Messages body never carries what a guardrail masked."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from routing.guardrails import services as guardrails
from routing.guardrails.core.policy import PolicySpec
from routing.guardrails.engines import engines
from tests.conftest import wait_for_record
from tests.guardrails.support import CARD, EMAIL
from tests.guardrails.test_proxy import post, proxy  # noqa: F401  (proxy: a fixture)
from tests.support.world import build_tenant

pytestmark = [pytest.mark.django_db]


@pytest.fixture(scope="module")
def masked_key(world: Any, django_db_blocker: Any) -> str:
    """A key whose requests have e-mail addresses and card numbers masked."""
    with django_db_blocker.unblock():
        built = build_tenant("native-masked", name="Native Masked", teams=["desk"], keys=["masked"])
        key, material = built.keys["masked"].api_key, built.keys["masked"]
        policy = guardrails.guardrail_policy_upsert(
            name="native-mask",
            spec=PolicySpec.model_validate(
                {"pii": {"entities": {"EMAIL_ADDRESS": "mask", "CREDIT_CARD": "mask"}}}
            ),
        )
        guardrails.guardrail_policy_attach(policy=policy, api_key=key)
    engines()
    return material.plaintext


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_it_refuses_to_send_the_raw_body_natively_once_pii_was_masked(
    masked_key,
    proxy,  # noqa: F811
    mock_server,
    stream,
):
    body = {
        "model": "claude-fallback",  # an Anthropic-format deployment: native if nothing changed
        "max_tokens": 100,
        "thinking": {"type": "adaptive"},
        "messages": [{"role": "user", "content": f"Write to {EMAIL} about {CARD}"}],
        "stream": stream,
    }
    response = await post(proxy, masked_key, body, path="messages")

    assert response.status_code == 200
    if stream:
        assert b"message_stop" in b"".join([chunk async for chunk in response.streaming_content])
    upstream = mock_server.requests()[-1]["body"]
    sent = str(upstream)
    assert EMAIL not in sent and CARD not in sent
    assert upstream["messages"][-1]["content"][0]["text"] == "Write to <EMAIL_1> about <CARD_1>"
    # Translated, so what the translation cannot carry is named, not silently lost.
    assert "thinking" not in upstream
    assert response["x-gateway-dropped-fields"] == "thinking"
    await sync_to_async(wait_for_record)(response["x-request-id"])
