"""The Conversations API against the live gateway, with the official `openai` SDK and the
OpenAI Agents SDK: conversations and their items, `conversation` on `POST /v1/responses` read
before each turn and appended after it, across an OpenAI-format and an Anthropic-format
deployment of the mock provider. Another tenant's key finds nothing; private tenants keep no
raw text; a conversation expires its tenant's retention."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import openai
import psycopg
import pytest

from audit import services
from audit.activity.models import ActivityEvent
from audit.activity.services import SYSTEM
from routing.responses_state.models import Conversation, ConversationItem
from routing.responses_state.services import conversations_purge
from tests.conftest import wait_for_record
from tests.e2e.test_responses_state import (
    BOTH,
    INSTRUCTIONS,
    _texts,
    private_keys,  # noqa: F401 (a fixture)
    sdk,
    upstream_body,
)
from tests.support.live import test_database_url as live_database_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def spoken(sent: list[dict[str, Any]]) -> str:
    """The non-system text the upstream was given, in order (an Anthropic-format deployment
    gets consecutive user messages merged, as Anthropic's alternation requires)."""
    return " | ".join(text for role, text in _texts(sent) if role != "system")


def in_order(text: str, parts: list[str]) -> bool:
    at = 0
    for part in parts:
        at = text.find(part, at)
        if at < 0:
            return False
        at += len(part)
    return True


def record_of(response: Any) -> Any:
    return wait_for_record("req_" + response.id.removeprefix("resp_"))


@BOTH
def test_three_turns_in_a_conversation_read_it_and_are_appended_to_it(
    gateway, world, mock_server, model
):
    client = sdk(gateway, world.key)
    tag = uuid.uuid4().hex[:8]
    conversation = client.conversations.create(
        metadata={"topic": f"portfolio-{tag}"},
        items=[{"type": "message", "role": "user", "content": f"My code is ZX-{tag}."}],
    )
    assert conversation.id.startswith("conv_") and conversation.object == "conversation"
    assert conversation.metadata == {"topic": f"portfolio-{tag}"}

    turns = []
    for question in ("Which code?", "Spell it.", f"Repeat it, {tag}."):
        turn = client.responses.create(
            model=model, instructions=INSTRUCTIONS, input=question, conversation=conversation.id
        )
        assert turn.conversation is not None and turn.conversation.id == conversation.id
        turns.append(turn)
    assert turns[2].output_text == f"Mock reply to: Repeat it, {tag}."

    # The stateless upstream got the conversation so far, then the new question.
    sent = spoken(upstream_body(mock_server, f"Repeat it, {tag}.")["messages"])
    assert in_order(
        sent,
        [
            f"My code is ZX-{tag}.",
            "Which code?",
            "Mock reply to: ",
            "Spell it.",
            "Mock reply to: Spell it.",
            f"Repeat it, {tag}.",
        ],
    )
    assert sent.count("Which code?") == 2  # asked once, answered once: nothing doubled
    # Each turn's audit record names its conversation.
    for turn in turns:
        assert record_of(turn).client_context.get("conversation_id") == conversation.id

    items = client.conversations.items.list(conversation.id, order="asc")
    assert [item.role for item in items.data] == ["user"] + ["user", "assistant"] * 3
    assert items.data[-1].content[0].text == f"Mock reply to: Repeat it, {tag}."
    newest = client.conversations.items.list(conversation.id, limit=2)  # newest first
    assert [item.id for item in newest.data] == [items.data[6].id, items.data[5].id]
    assert newest.has_more is True
    one = client.conversations.items.retrieve(items.data[1].id, conversation_id=conversation.id)
    assert one.content[0].text == "Which code?"

    # Items added by the client join the next turn's context.
    added = client.conversations.items.create(
        conversation.id,
        items=[{"type": "message", "role": "user", "content": "Also: my desk is D-7."}],
    )
    assert len(added.data) == 1 and added.data[0].id
    client.responses.create(model=model, input=f"Desk, {tag}?", conversation=conversation.id)
    sent = spoken(upstream_body(mock_server, f"Desk, {tag}?")["messages"])
    assert in_order(sent, ["Mock reply to: Repeat it", "Also: my desk is D-7.", f"Desk, {tag}?"])

    # Deleting an item leaves it out of what the next turn is given; the answer is the
    # conversation, as OpenAI's.
    after_delete = client.conversations.items.delete(
        items.data[0].id, conversation_id=conversation.id
    )
    assert after_delete.id == conversation.id and after_delete.object == "conversation"
    client.responses.create(model=model, input=f"Again, {tag}?", conversation=conversation.id)
    sent = spoken(upstream_body(mock_server, f"Again, {tag}?")["messages"])
    assert sent.startswith("Which code?") and in_order(sent, ["Which code?", "Again"])

    updated = client.conversations.update(conversation.id, metadata={"topic": "closed"})
    assert updated.metadata == {"topic": "closed"}
    assert client.conversations.retrieve(conversation.id).metadata == {"topic": "closed"}

    deleted = client.conversations.delete(conversation.id)
    assert deleted.deleted is True and deleted.id == conversation.id
    assert not ConversationItem.objects.filter(conversation__conversation_id=conversation.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conversation.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.create(model=model, input="Hello?", conversation=conversation.id)
    assert gone.value.body["code"] == "conversation_not_found"
    assert gone.value.body["param"] == "conversation"


def test_another_tenants_key_gets_404_on_every_conversation_call(gateway, world):
    ours = sdk(gateway, world.key)
    conversation = ours.conversations.create(
        items=[{"type": "message", "role": "user", "content": "Between us."}]
    )
    ours.responses.create(model="demo", input="Kept?", conversation=conversation.id)
    item_id = ours.conversations.items.list(conversation.id).data[0].id
    theirs = sdk(gateway, world.other_tenant_key)
    for conversation_id in (conversation.id, "conv_" + uuid.uuid4().hex):
        attempts = (
            lambda c: theirs.conversations.retrieve(c),
            lambda c: theirs.conversations.update(c, metadata={"x": "y"}),
            lambda c: theirs.conversations.delete(c),
            lambda c: theirs.conversations.items.list(c),
            lambda c: theirs.conversations.items.create(
                c, items=[{"type": "message", "role": "user", "content": "Injected."}]
            ),
            lambda c: theirs.conversations.items.retrieve(item_id, conversation_id=c),
            lambda c: theirs.conversations.items.delete(item_id, conversation_id=c),
            lambda c: theirs.responses.create(model="demo", input="Hi", conversation=c),
        )
        for attempt in attempts:
            with pytest.raises(openai.NotFoundError) as missing:
                attempt(conversation_id)
            assert missing.value.body["message"] == (
                f"Conversation with id '{conversation_id}' not found."
            )
    # Their attempts changed nothing of ours.
    kept = ours.conversations.items.list(conversation.id, order="asc")
    assert [item.role for item in kept.data] == ["user", "user", "assistant"]
    assert ours.conversations.retrieve(conversation.id).metadata == {}


def test_erasing_an_end_user_erases_the_items_they_added_to_a_conversation_directly(gateway, world):
    client = sdk(gateway, world.key)
    user = f"erase-me-{uuid.uuid4().hex[:6]}"
    theirs = {"extra_headers": {"x-gateway-end-user": user}}
    message = {"type": "message", "role": "user", "content": "My IBAN is DE89 3704 0044."}
    conversation = client.conversations.create(items=[message], **theirs)
    client.conversations.items.create(conversation.id, items=[message], **theirs)
    others = {"extra_headers": {"x-gateway-end-user": "someone-else"}}
    client.conversations.items.create(conversation.id, items=[message], **others)
    client.conversations.items.create(conversation.id, items=[message])
    with pytest.raises(openai.BadRequestError):  # a name the audit records could not hold
        client.conversations.items.create(
            conversation.id, items=[message], extra_headers={"x-gateway-end-user": "x" * 5000}
        )

    # They made no model call: no record names them, their items still go.
    services.audit_records_erase(
        tenant=world.team.tenant, end_user=user, reason="GDPR request 7", actor=SYSTEM
    )

    kept = ConversationItem.objects.filter(conversation__conversation_id=conversation.id)
    assert list(kept.values_list("end_user", flat=True).order_by("id")) == ["someone-else", ""]
    event = ActivityEvent.objects.filter(action="audit.erase", tenant=world.team.tenant).latest(
        "id"
    )
    assert event.details["records"] == 0 and event.details["copies"] == 2


def test_bad_conversation_requests_are_refused_in_openais_format(gateway, world):
    client = sdk(gateway, world.key)
    first = client.responses.create(model="demo", input="One.")
    conversation = client.conversations.create()
    with pytest.raises(openai.BadRequestError) as both:
        client.responses.create(
            model="demo", input="Two.", conversation=conversation.id, previous_response_id=first.id
        )
    assert both.value.body["code"] == "mutually_exclusive_parameters"
    too_many = [{"type": "message", "role": "user", "content": str(n)} for n in range(21)]
    refusals = (
        (lambda: client.conversations.create(items=too_many), "items"),
        (lambda: client.conversations.create(metadata={"k": 1}), "metadata"),
        (lambda: client.conversations.create(items=[{"role": "robot", "content": "x"}]), None),
        (lambda: client.conversations.items.list(conversation.id, limit=0), "limit"),
        (lambda: client.conversations.items.list(conversation.id, order="up"), "order"),
    )
    for attempt, param in refusals:
        with pytest.raises(openai.BadRequestError) as refused:
            attempt()
        if param:
            assert refused.value.body["param"] == param
    with pytest.raises(openai.NotFoundError) as missing_item:
        client.conversations.items.retrieve("msg_nope", conversation_id=conversation.id)
    assert missing_item.value.body["code"] == "item_not_found"
    # Nothing was created by the refused calls.
    assert not ConversationItem.objects.filter(conversation__conversation_id=conversation.id)


@pytest.mark.parametrize("mode", ["masked", "metadata"])
def test_a_private_tenants_conversation_keeps_no_raw_text_and_cannot_continue(
    gateway,
    private_keys,  # noqa: F811
    mode,
):
    client = sdk(gateway, private_keys[mode])
    secret = "Call me at +44 20 7946 0958 or jane@example.com"
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": secret}]
    )
    kept = str(
        list(
            ConversationItem.objects.filter(
                conversation__conversation_id=conversation.id
            ).values_list("item", flat=True)
        )
    )
    assert "7946" not in kept and "jane@example.com" not in kept
    assert Conversation.objects.get(conversation_id=conversation.id).content_mode == mode
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="demo", input="And?", conversation=conversation.id)
    assert refused.value.body["code"] == "conversation_content_not_kept"
    listed = client.conversations.items.list(conversation.id)  # what was kept, as it was kept
    assert "7946" not in str(listed.data)


def test_an_expired_conversation_is_gone_and_purged(gateway, world):
    client = sdk(gateway, world.key)
    conversation = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "Short-lived."}]
    )
    with psycopg.connect(live_database_url(), autocommit=True) as connection:
        connection.execute(
            "UPDATE responses_state_conversation SET expires_at = created_at "
            "WHERE conversation_id = %s",
            [conversation.id],
        )
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.list(conversation.id)
    assert conversations_purge() >= 1
    assert not Conversation.objects.filter(conversation_id=conversation.id).exists()
    assert not ConversationItem.objects.filter(conversation__conversation_id=conversation.id)


@BOTH
def test_an_agents_sdk_conversation_keeps_three_turns_on_the_server(gateway, world, model):
    agents = pytest.importorskip("agents", reason="the OpenAI Agents SDK (openai-agents)")
    agents.set_tracing_disabled(True)

    @agents.function_tool
    def get_allocation(client_id: str) -> str:
        """Look up a client's allocation."""
        return f"60% equities for {client_id}"

    conversation = sdk(gateway, world.key).conversations.create()

    async def run() -> list[Any]:
        client = openai.AsyncOpenAI(base_url=gateway.api_url, api_key=world.key, max_retries=0)
        agent = agents.Agent(
            name="advisor",
            instructions=INSTRUCTIONS,
            model=agents.OpenAIResponsesModel(model=model, openai_client=client),
            tools=[get_allocation],
        )
        results = []
        for question in ("Allocation for client C-9?", "And for C-10?", "Thanks, summarise."):
            results.append(
                await agents.Runner.run(agent, question, conversation_id=conversation.id)
            )
        await client.close()
        return results

    results = asyncio.run(run())
    for result in results:
        assert result.final_output.startswith("Tool result received: 60% equities for mock")
    items = sdk(gateway, world.key).conversations.items.list(
        conversation.id, order="asc", limit=100
    )
    kinds = [item.type for item in items.data]
    # Three questions, each a tool call, its output and the final message: nothing twice.
    assert kinds.count("function_call") == 3 and kinds.count("function_call_output") == 3
    assert kinds.count("message") == 6
    assert len({item.id for item in items.data}) == len(items.data)


@BOTH
def test_a_streamed_turn_is_added_to_its_conversation_before_it_completes(gateway, world, model):
    client = sdk(gateway, world.key)
    conversation = client.conversations.create()
    with client.responses.stream(
        model=model, input="Stream this.", conversation=conversation.id
    ) as stream:
        final = stream.get_final_response()
    assert final.conversation is not None and final.conversation.id == conversation.id
    # Listed at once: the turn was added before the stream's last event.
    items = client.conversations.items.list(conversation.id, order="asc")
    assert [item.role for item in items.data] == ["user", "assistant"]
    assert items.data[1].content[0].text == final.output_text
    assert items.data[1].id == final.output[0].id
