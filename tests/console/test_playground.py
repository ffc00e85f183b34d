"""The playground in a real browser: several turns, a system prompt and parameters, a stream,
two models side by side, and each answer's tokens, cost, latency and request id (its record)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.browser import People, create_key, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def test_two_models_side_by_side_over_two_turns_streamed(
    page: Any, people: People, console_gateway: Any
) -> None:
    sign_in(page, people.developer)
    key = create_key(page, "acme", f"play-{uuid.uuid4().hex[:6]}")
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Your key").fill(key)
    page.get_by_label("Model", exact=True).select_option("demo")
    page.get_by_label("Compare with").select_option("advisor-chat")
    page.get_by_label("System prompt").fill("Answer briefly.")
    page.get_by_label("Temperature").fill("0.2")
    page.get_by_label("Max tokens").fill("64")
    page.get_by_label("Stream the answer").check()
    page.get_by_label("Message").fill("What is a gateway?")
    page.get_by_role("button", name="Send").click()

    replies = page.get_by_test_id("reply")
    replies.first.wait_for()
    assert replies.count() == 2
    for i in range(2):
        reply = replies.nth(i)
        assert "Mock reply" in reply.get_by_test_id("answer").inner_text()
        assert reply.get_by_test_id("ttft").inner_text() != "— ms"  # it streamed
        assert reply.get_by_test_id("request-link").is_visible()
    assert replies.nth(0).get_attribute("data-model") == "demo"
    assert replies.nth(1).get_attribute("data-model") == "advisor-chat"

    # A second turn carries the first: each side shows both exchanges.
    page.get_by_label("Message").fill("And a second question?")
    page.get_by_role("button", name="Send").click()
    page.get_by_text("And a second question?").first.wait_for()
    first_side = page.get_by_test_id("reply").first
    assert first_side.get_by_text("What is a gateway?", exact=True).is_visible()
    assert first_side.locator(".turn--assistant").count() == 2
    assert first_side.get_by_test_id("reply-cost").inner_text().startswith("$")

    # The request id opens the record, limited to the developer's own requests.
    request_id = first_side.get_by_test_id("request-link").inner_text()
    first_side.get_by_test_id("request-link").click()
    page.get_by_role("heading", name=f"Request {request_id}").wait_for()
    assert "And a second question?" in page.content()
