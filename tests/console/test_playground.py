"""The playground in a real browser: several turns, a system prompt and parameters, a stream,
two models side by side, and each answer's tokens, cost, latency and request id (its record)."""

from __future__ import annotations

import itertools
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
    page.get_by_test_id("reply-figures").nth(1).wait_for()  # both streams ended
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
    page.get_by_test_id("reply-figures").nth(1).wait_for()
    first_side = page.get_by_test_id("reply").first
    assert first_side.get_by_text("What is a gateway?", exact=True).is_visible()
    assert first_side.locator(".turn--assistant").count() == 2
    assert first_side.get_by_test_id("reply-cost").inner_text().startswith("$")

    # The request id opens the record, limited to the developer's own requests.
    request_id = first_side.get_by_test_id("request-link").inner_text()
    first_side.get_by_test_id("request-link").click()
    page.get_by_role("heading", name=f"Request {request_id}").wait_for()
    assert "And a second question?" in page.content()


# The text of side 0's answer each time it changes while it streams (before the final render).
WATCH_ANSWER = """() => {
  window.seen = [];
  new MutationObserver(() => {
    const el = document.querySelector('#answer [data-side="0"] .answer--streaming');
    const text = el ? el.textContent : "";
    if (text && text !== window.seen[window.seen.length - 1]) window.seen.push(text);
  }).observe(document.querySelector("form[data-playground]"),
             {subtree: true, childList: true, characterData: true});
}"""


def _ask_streamed(page: Any, key: str, message: str) -> None:
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Your key").fill(key)
    page.get_by_label("Model", exact=True).select_option("demo")
    page.get_by_label("Stream the answer").check()
    page.get_by_label("Message").fill(message)
    page.evaluate(WATCH_ANSWER)
    page.get_by_role("button", name="Send").click()


def test_a_streamed_answer_grows_in_the_browser_token_by_token(
    page: Any, people: People, console_gateway: Any
) -> None:
    sign_in(page, people.developer)
    key = create_key(page, "acme", f"stream-{uuid.uuid4().hex[:6]}")
    _ask_streamed(page, key, "[mock chunk_delay_ms=120] Tell me how a gateway streams an answer")

    # While it streams: part of the answer is there, Send waits and Stop is offered.
    page.wait_for_function("window.seen.length >= 2")
    assert page.get_by_role("button", name="Stop").is_visible()
    assert page.get_by_role("button", name="Send").is_disabled()
    page.get_by_test_id("reply-cost").wait_for()  # the final answer, with the record's figures

    seen = page.evaluate("window.seen")
    final = page.get_by_test_id("answer").inner_text().strip()
    assert final.startswith("Mock reply to:")
    assert len(seen) >= 5, seen  # it grew in steps, not in one piece
    for shorter, longer in itertools.pairwise(seen):
        assert longer.startswith(shorter) and len(longer) > len(shorter)
    assert seen[0] != final and seen[-1].strip() == final
    assert page.get_by_test_id("ttft").inner_text() != "— ms"
    assert page.get_by_test_id("request-link").is_visible()
    assert page.get_by_role("button", name="Stop").is_hidden()
    assert page.get_by_role("button", name="Send").is_enabled()


def test_stop_ends_the_stream_keeps_what_arrived_and_the_record_says_so(
    page: Any, people: People, console_gateway: Any
) -> None:
    from tests.conftest import wait_for_record

    sign_in(page, people.developer)
    key = create_key(page, "acme", f"stop-{uuid.uuid4().hex[:6]}")
    _ask_streamed(page, key, "[mock chunk_delay_ms=400] A long answer that we will not wait for")
    page.wait_for_function("window.seen.length >= 2")
    page.get_by_role("button", name="Stop").click()

    status = page.get_by_test_id("reply-status")
    status.get_by_text("Stopped.").wait_for()
    kept = page.get_by_test_id("answer").inner_text()
    page.wait_for_timeout(1200)  # three more words would have come
    assert page.get_by_test_id("answer").inner_text() == kept
    assert kept.startswith("Mock reply") and "wait for" not in kept
    assert page.get_by_role("button", name="Send").is_enabled()
    assert page.get_by_role("button", name="Stop").is_hidden()

    # The gateway ended the stream and recorded it as the client's leaving, with what it sent.
    request_id = page.get_by_test_id("request-link").inner_text()
    record = wait_for_record(request_id)
    assert (record.status, record.error_type) == ("failed", "client_disconnected")

    # The conversation goes on from what arrived.
    page.get_by_label("Message").fill("[mock chunk_delay_ms=0] Go on")
    page.get_by_role("button", name="Send").click()
    page.get_by_test_id("reply-cost").wait_for()
    turns = page.locator(".turn--assistant")
    assert turns.count() == 2
    assert turns.first.inner_text().endswith(kept.strip())
