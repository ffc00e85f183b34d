"""Server-side state for the Responses API: `store`, `previous_response_id`, retrieval and
deletion, with the official `openai` SDK and the OpenAI Agents SDK, against an OpenAI-format and
an Anthropic-format deployment of the mock provider. Another tenant's key finds nothing."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import httpx
import openai
import psycopg
import pytest

from audit.models import AuditPolicy
from routing.responses_state.models import StoredResponse
from routing.responses_state.services import responses_purge
from tests.conftest import wait_for_record
from tests.support.live import test_database_url as live_database_url
from tests.support.world import add_keys, build_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

BOTH = pytest.mark.parametrize(
    "model", ["demo", "claude-fallback"], ids=["openai-format", "anthropic-format"]
)
INSTRUCTIONS = "You are a careful advisor assistant."


def sdk(gateway: Any, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)


def upstream_body(mock_server: Any, text: str) -> dict[str, Any]:
    """The last body the mock provider received whose last message mentions `text`."""
    log = httpx.get(mock_server.base_url + "/_mock/requests").json()
    for entry in reversed(log):
        body = entry.get("body") or {}
        messages = body.get("messages") or []
        if messages and text in str(messages[-1]):
            return body
    raise AssertionError(f"no upstream request ending with {text!r}")


def _texts(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(role, text) of each message, in OpenAI's or Anthropic's form."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(str(part.get("text") or "") for part in content)
        out.append((message["role"], str(content or "")))
    return out


@BOTH
def test_three_turns_continue_with_previous_response_id_and_are_kept(
    gateway, world, mock_server, model
):
    client = sdk(gateway, world.key)
    tag = uuid.uuid4().hex[:8]
    first = client.responses.create(
        model=model, instructions=INSTRUCTIONS, input=f"My portfolio code is ZX-{tag}."
    )
    assert first.store is True and first.previous_response_id is None
    second = client.responses.create(
        model=model, input="Which code did I give you?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    with client.responses.stream(
        model=model, input=f"Repeat it, {tag}.", previous_response_id=second.id
    ) as stream:
        third = stream.get_final_response()
    assert third.status == "completed" and third.store is True
    assert third.output_text == f"Mock reply to: Repeat it, {tag}."

    # The stateless upstream got the whole conversation, rebuilt: earlier input and output first.
    sent = _texts(upstream_body(mock_server, f"Repeat it, {tag}.")["messages"])
    assert [text for role, text in sent if role != "system"] == [
        f"My portfolio code is ZX-{tag}.",
        f"Mock reply to: My portfolio code is ZX-{tag}.",
        "Which code did I give you?",
        "Mock reply to: Which code did I give you?",
        f"Repeat it, {tag}.",
    ]
    assert third.usage.input_tokens > second.usage.input_tokens > first.usage.input_tokens

    # Each turn's audit record names the response it continues.
    for response, previous in ((first, None), (second, first.id), (third, second.id)):
        record = wait_for_record("req_" + response.id.removeprefix("resp_"))
        assert record.client_context.get("previous_response_id") == previous

    kept = client.responses.retrieve(second.id)
    assert kept.id == second.id and kept.output_text == second.output_text
    assert kept.previous_response_id == first.id
    items = client.responses.input_items.list(third.id, order="asc")
    assert [item.type for item in items.data] == ["message"] * 5
    assert [item.role for item in items.data] == ["user", "assistant"] * 2 + ["user"]
    assert items.data[0].content[0].text == f"My portfolio code is ZX-{tag}."
    newest = client.responses.input_items.list(third.id, limit=2)  # newest first, as OpenAI's
    assert [item.id for item in newest.data] == [items.data[4].id, items.data[3].id]
    assert newest.has_more is True

    # Deleting a turn removes it; the later turns keep their own context.
    deleted = client.responses.delete(first.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    fourth = client.responses.create(
        model=model, input="And once more?", previous_response_id=third.id
    )
    assert fourth.previous_response_id == third.id
    with pytest.raises(openai.BadRequestError) as gone:
        client.responses.create(model=model, input="Again?", previous_response_id=first.id)
    assert gone.value.body["code"] == "previous_response_not_found"


@BOTH
def test_another_tenants_key_gets_404_on_every_id(gateway, world, model):
    ours = sdk(gateway, world.key)
    first = ours.responses.create(model=model, input="Keep this between us.")
    second = ours.responses.create(
        model=model, input="And this too.", previous_response_id=first.id
    )
    theirs = sdk(gateway, world.other_tenant_key)
    for response_id in (first.id, second.id, "resp_" + uuid.uuid4().hex):
        for attempt in (
            theirs.responses.retrieve,
            theirs.responses.input_items.list,
            theirs.responses.delete,
            theirs.responses.cancel,
        ):
            with pytest.raises(openai.NotFoundError) as missing:
                attempt(response_id)
            error = missing.value.body
            assert (
                error["code"] == "response_not_found" and error["type"] == "invalid_request_error"
            )
            assert error["message"] == f"No response with id '{response_id}' was found."
        # Continuing it answers as for an id that never existed (OpenAI's own 400).
        with pytest.raises(openai.BadRequestError) as refused:
            theirs.responses.create(model=model, input="Hi", previous_response_id=response_id)
        assert refused.value.body["message"] == (
            f"Previous response with id '{response_id}' not found."
        )
    # Their attempts changed nothing of ours.
    assert ours.responses.retrieve(second.id).output_text == second.output_text


def test_text_postgresql_refuses_is_kept_and_read_back_exactly(gateway, world):
    client = sdk(gateway, world.key)
    odd = "A NUL \u0000 and a backslash \\u0000 stay as sent"
    first = client.responses.create(model="demo", input=odd, metadata={"k\u0000": "v\u0000"})
    assert first.store is True
    kept = client.responses.retrieve(first.id)
    assert kept.output_text == first.output_text and "\u0000" in kept.output_text
    items = client.responses.input_items.list(first.id)
    assert items.data[0].content[0].text == odd
    second = client.responses.create(model="demo", input="Next.", previous_response_id=first.id)
    assert second.previous_response_id == first.id


def test_a_stored_response_cannot_be_cancelled_it_has_finished(gateway, world):
    client = sdk(gateway, world.key)
    response = client.responses.create(model="demo", input="Quick one.")
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.cancel(response.id)
    assert refused.value.body["code"] == "response_not_cancellable"
    assert client.responses.retrieve(response.id).status == "completed"


def test_store_false_keeps_nothing(gateway, world):
    client = sdk(gateway, world.key)
    response = client.responses.create(model="demo", input="Forget me.", store=False)
    assert response.store is False
    assert not StoredResponse.objects.filter(response_id=response.id).exists()
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


@pytest.fixture(scope="module")
def private_keys(world: Any, django_db_blocker: Any) -> dict[str, str]:
    """A key of a new tenant per audit content mode that keeps no raw text."""
    keys = {}
    with django_db_blocker.unblock():
        for mode in ("masked", "metadata"):
            private = build_tenant(
                f"private-{uuid.uuid4().hex[:6]}", name="Private", teams=["desk"]
            )
            AuditPolicy.objects.create(tenant=private.tenant, content_mode=mode)
            keys[mode] = add_keys(private, ["private"])["private"].plaintext
    return keys


@pytest.mark.parametrize("mode", ["masked", "metadata"])
def test_a_private_tenant_keeps_no_raw_text_and_cannot_continue(gateway, private_keys, mode):
    client = sdk(gateway, private_keys[mode])
    secret = "Call me at +44 20 7946 0958 or jane@example.com"
    first = client.responses.create(model="demo", input=secret)
    kept = StoredResponse.objects.get(response_id=first.id)
    assert "7946" not in str(kept.input_items) + str(kept.response)
    assert "jane@example.com" not in str(kept.input_items) + str(kept.response)
    assert kept.content_mode == mode
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="demo", input="And?", previous_response_id=first.id)
    error = refused.value.body
    assert error["code"] == "previous_response_content_not_kept"
    assert f"content mode is '{mode}'" in error["message"]
    retrieved = client.responses.retrieve(first.id)  # what was kept, as it was kept
    assert "7946" not in str(retrieved.output)


def test_an_expired_response_is_gone_and_purged(gateway, world):
    client = sdk(gateway, world.key)
    response = client.responses.create(model="demo", input="Short-lived.")
    # Committed at once (the test's own transaction is invisible to the live gateway).
    with psycopg.connect(live_database_url(), autocommit=True) as connection:
        connection.execute(
            "UPDATE responses_state_storedresponse SET expires_at = created_at "
            "WHERE response_id = %s",
            [response.id],
        )
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    assert responses_purge() >= 1
    assert not StoredResponse.objects.filter(response_id=response.id).exists()


def test_input_items_paging_and_bad_parameters(gateway, world):
    client = sdk(gateway, world.key)
    first = client.responses.create(model="demo", input="One.")
    second = client.responses.create(model="demo", input="Two.", previous_response_id=first.id)
    everything = client.responses.input_items.list(second.id, order="asc")
    assert len(everything.data) == 3 and everything.has_more is False
    after = client.responses.input_items.list(second.id, order="asc", after=everything.data[0].id)
    assert [item.id for item in after.data] == [item.id for item in everything.data[1:]]
    for params, param in (({"limit": 0}, "limit"), ({"order": "sideways"}, "order")):
        with pytest.raises(openai.BadRequestError) as refused:
            client.responses.input_items.list(second.id, **params)
        assert refused.value.body["param"] == param


@BOTH
def test_an_agents_sdk_conversation_chains_three_turns_retrieved_deleted_and_private(
    gateway, world, model
):
    agents = pytest.importorskip("agents", reason="the OpenAI Agents SDK (openai-agents)")
    agents.set_tracing_disabled(True)

    @agents.function_tool
    def get_allocation(client_id: str) -> str:
        """Look up a client's allocation."""
        return f"60% equities for {client_id}"

    async def conversation() -> list[Any]:
        client = openai.AsyncOpenAI(base_url=gateway.api_url, api_key=world.key, max_retries=0)
        agent = agents.Agent(
            name="advisor",
            instructions=INSTRUCTIONS,
            model=agents.OpenAIResponsesModel(model=model, openai_client=client),
            tools=[get_allocation],
        )
        results = []
        previous = None
        for question in ("Allocation for client C-9?", "And for C-10?", "Thanks, summarise."):
            result = await agents.Runner.run(
                agent, question, previous_response_id=previous, auto_previous_response_id=True
            )
            previous = result.last_response_id
            results.append(result)
        await client.close()
        return results

    results = asyncio.run(conversation())
    for result in results:
        # The tool ran in the agent, its output went back chained by previous_response_id.
        assert result.final_output.startswith("Tool result received: 60% equities for mock")
    # Every model call after the first continued the one before it, on the server.
    ids = [r.response_id for result in results for r in result.raw_responses]
    assert len(ids) == 6
    for earlier, later in itertools.pairwise(ids):
        assert sdk(gateway, world.key).responses.retrieve(later).previous_response_id == earlier
    ours = sdk(gateway, world.key)
    items = ours.responses.input_items.list(ids[-1], order="asc", limit=100)
    kinds = [item.type for item in items.data]
    assert kinds.count("function_call_output") == 3 and kinds.count("function_call") == 3

    # Every id the conversation made is retrievable by its tenant and by no other.
    theirs = sdk(gateway, world.other_tenant_key)
    for response_id in ids:
        assert ours.responses.retrieve(response_id).status == "completed"
        for attempt in (
            theirs.responses.retrieve,
            theirs.responses.input_items.list,
            theirs.responses.delete,
            theirs.responses.cancel,
        ):
            with pytest.raises(openai.NotFoundError):
                attempt(response_id)
    # Deleted, each is gone for its own tenant too, and cannot be continued.
    for response_id in ids:
        ours.responses.delete(response_id)
        with pytest.raises(openai.NotFoundError):
            ours.responses.retrieve(response_id)
    with pytest.raises(openai.BadRequestError) as gone:
        ours.responses.create(model=model, input="Still there?", previous_response_id=ids[-1])
    assert gone.value.body["code"] == "previous_response_not_found"
