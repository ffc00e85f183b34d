"""`/v1/responses` on a deployment that speaks the Responses API itself (provider kind
`openai-responses`): the client's body goes upstream as sent and the provider's answer comes
back as it came, with keys, guardrails, state, cost and the audit record applied all the same;
hosted tools reach the provider only where the route forwards them (docs/api.md)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import wait_for_record
from tests.guardrails.support import EMAIL

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

NATIVE = "native-responses"  # forwards web_search
PLAIN = "native-no-forward"  # the same deployment, forwarding nothing
CACHED = "native-cached"  # forwards web_search, caches exact repeats
WEB_SEARCH_USD = Decimal("0.025")  # the deployment's price per web search call
UPSTREAM = "mock-gpt-responses-2026"
MAILBOX_TOOL = {
    "type": "function",
    "name": "read_mailbox",
    "description": "Read a client's mailbox",
    "parameters": {
        "type": "object",
        "properties": {"client_id": {"type": "string"}},
        "required": ["client_id"],
    },
}


@pytest.fixture(scope="module")
def native(world: Any, gateway: Any, mock_server: Any, django_db_blocker: Any) -> Iterator[None]:
    """A provider that serves the Responses API, behind two routes."""
    from django.utils import timezone

    from audit.activity.services import SYSTEM
    from billing import services as billing
    from routing import services as routing
    from routing.models import Deployment, Provider, Route
    from tests.support.live import wait_for_config

    with django_db_blocker.unblock():
        provider = routing.provider_upsert(
            name="mock-responses",
            kind="openai-responses",
            base_url=mock_server.base_url + "/v1",
            credential="sk-responses-upstream",
            region="us",
        )
        deployment = routing.deployment_upsert(
            name="mock-gpt-responses",
            provider=provider,
            upstream_model=UPSTREAM,
            input_price_per_mtok=Decimal("2"),
            output_price_per_mtok=Decimal("8"),
        )
        billing.price_set(  # its provider charges each web search it runs
            actor=SYSTEM,
            deployment=deployment,
            input_per_mtok=Decimal("2"),
            output_per_mtok=Decimal("8"),
            per_tool_call_usd={"web_search": WEB_SEARCH_USD},
            effective_from=timezone.now() - timedelta(seconds=1),
        )
        routing.route_upsert(
            alias=NATIVE,
            description="",
            deployments=[deployment],
            forward_hosted_tools=["web_search", "web_search_2025_08_26"],
        )
        routing.route_upsert(alias=PLAIN, description="", deployments=[deployment])
        routing.route_upsert(
            alias=CACHED,
            description="",
            deployments=[deployment],
            forward_hosted_tools=["web_search"],
            cache_mode="exact",
        )
    for alias in (NATIVE, PLAIN, CACHED):
        wait_for_config(gateway, world.key, alias)
    yield
    with django_db_blocker.unblock():
        Route.objects.filter(alias__in=[NATIVE, PLAIN, CACHED]).delete()
        Deployment.objects.filter(pk=deployment.pk).update(is_active=False)
        Provider.objects.filter(pk=provider.pk).update(is_active=False)


def client(gateway: Any, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)


def upstream(mock_server: Any, marker: str) -> list[dict[str, Any]]:
    return [
        r
        for r in mock_server.requests()
        if r["path"] == "/v1/responses" and marker in json.dumps(r.get("body"))
    ]


def test_a_native_response_is_the_providers_own_under_the_gateways_id(
    gateway, world, native, mock_server
):
    marker = uuid.uuid4().hex
    body = {
        "model": NATIVE,
        "instructions": "Be brief.",
        "input": [{"role": "user", "content": f"How is the Smith portfolio allocated? {marker}"}],
        "include": ["reasoning.encrypted_content"],
        "reasoning": {"effort": "low", "summary": "auto"},
        "prompt_cache_key": "smith-portfolio",
        "safety_identifier": "advisor-17",
        "user": "advisor-17",
    }
    answer = httpx.post(
        f"{gateway.api_url}/responses",
        headers={"authorization": f"Bearer {world.key}"},
        json=body,
        timeout=10,
    )

    assert answer.status_code == 200, answer.text
    response = answer.json()
    record = wait_for_record(answer.headers["x-request-id"])
    # The provider got the client's body: only the model and `store` (the gateway's) differ.
    (sent,) = upstream(mock_server, marker)
    assert sent["body"] == {**body, "model": UPSTREAM, "store": False}
    assert sent["headers"]["authorization"] == "Bearer sk-responses-upstream"
    # The client gets what the provider answered: its reasoning item (encrypted, which no chat
    # form can carry) and its own fields, under an id that leads to the audit record.
    assert response["id"] == "resp_" + record.request_id.removeprefix("req_")
    assert response["store"] is True
    reasoning, message = response["output"]
    assert reasoning["type"] == "reasoning"
    assert reasoning["encrypted_content"] == "gAAAAB-mock-encrypted-reasoning"
    assert message["content"][0]["text"].startswith("Mock reply to: How is the Smith")
    assert response["service_tier"] == "default" and response["model"] == UPSTREAM
    assert answer.headers["x-gateway-deployment"] == "mock-gpt-responses"
    # Governed all the same: recorded as sent, costed from the provider's usage.
    assert (record.endpoint, record.status, record.end_user) == (
        "responses",
        "success",
        "advisor-17",
    )
    assert record.request_body == sent["body"]
    assert record.prompt_tokens == response["usage"]["input_tokens"] > 0
    assert record.completion_tokens == response["usage"]["output_tokens"] > 0
    assert record.cost_usd == (
        Decimal(record.prompt_tokens) * 2 + Decimal(record.completion_tokens) * 8
    ) / Decimal(1_000_000)


def test_a_native_stream_relays_the_providers_events(gateway, world, native, mock_server):
    marker = uuid.uuid4().hex
    events: list[tuple[str, dict[str, Any]]] = []
    with httpx.stream(
        "POST",
        f"{gateway.api_url}/responses",
        headers={"authorization": f"Bearer {world.key}"},
        json={
            "model": NATIVE,
            "input": f"Summarise the quarter {marker}",
            "include": ["reasoning.encrypted_content"],
            "stream": True,
        },
        timeout=10,
    ) as answer:
        assert answer.status_code == 200
        request_id = answer.headers["x-request-id"]
        for block in answer.read().decode().split("\n\n"):
            if block.strip():
                name, data = block.split("\n", 1)
                events.append((name.removeprefix("event: "), json.loads(data[len("data: ") :])))

    kinds = [name for name, _ in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    # The provider's own sequence, numbered as it numbered it, reasoning item included.
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    added = [data["item"]["type"] for name, data in events if name == "response.output_item.added"]
    assert added == ["reasoning", "message"]
    text = "".join(data["delta"] for name, data in events if name == "response.output_text.delta")
    assert text.startswith("Mock reply to: Summarise the quarter")
    record = wait_for_record(request_id)
    final = events[-1][1]["response"]
    assert final["id"] == events[0][1]["response"]["id"]
    assert final["id"] == "resp_" + record.request_id.removeprefix("req_")
    assert final["store"] is True
    assert record.completion_tokens == final["usage"]["output_tokens"] > 0
    assert record.response_body["choices"][0]["message"]["content"] == text
    (sent,) = upstream(mock_server, marker)
    assert sent["body"]["stream"] is True and sent["body"]["store"] is False


def test_turns_chain_on_a_native_deployment_with_the_gateway_keeping_the_state(
    gateway, world, native, mock_server
):
    sdk = client(gateway, world.key)
    marker = uuid.uuid4().hex
    first = sdk.responses.create(model=NATIVE, input=f"My code is ZX-41. {marker}")
    second = sdk.responses.create(
        model=NATIVE, input="Which code did I give?", previous_response_id=first.id
    )

    assert second.previous_response_id == first.id
    # The provider keeps nothing: it got the whole conversation, and no id of the gateway's.
    sent = upstream(mock_server, marker)[-1]["body"]
    assert "previous_response_id" not in sent and sent["store"] is False
    assert [item.get("role") or item["type"] for item in sent["input"]] == [
        "user",
        "assistant",
        "user",
    ]
    assert sdk.responses.retrieve(second.id).output_text == second.output_text
    with pytest.raises(openai.NotFoundError):
        client(gateway, world.other_tenant_key).responses.retrieve(second.id)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_forwarded_hosted_tool_runs_at_the_provider_and_is_recorded(
    gateway, world, native, mock_server, stream
):
    marker = uuid.uuid4().hex
    question = f"What happened in the markets today? {marker}"
    sdk = client(gateway, world.key)
    tools: Any = [{"type": "web_search"}, MAILBOX_TOOL]
    response: Any
    if stream:
        with sdk.responses.stream(model=NATIVE, input=question, tools=tools) as events:
            response = events.get_final_response()
    else:
        response = sdk.responses.create(model=NATIVE, input=question, tools=tools)

    search = next(item for item in response.output if item.type == "web_search_call")
    assert search.status == "completed"
    (sent,) = upstream(mock_server, marker)
    assert sent["body"]["tools"] == tools
    record = wait_for_record("req_" + response.id.removeprefix("resp_"))
    used = {call.get("type"): call for call in record.tool_calls}
    assert used["web_search_call"]["action"]["query"] == question
    assert used["function"]["function"]["name"] == "read_mailbox"
    assert record.routing["forwarded_tools"] == ["web_search"]
    # The search is charged at the deployment's price per call, on top of the tokens.
    searches = sum(1 for call in record.tool_calls if call.get("type") == "web_search_call")
    tokens = (Decimal(record.prompt_tokens) * 2 + Decimal(record.completion_tokens) * 8) / 10**6
    assert searches == 1 and record.cost_usd == tokens + WEB_SEARCH_USD


def test_a_request_forwarding_a_hosted_tool_is_never_answered_from_the_cache(
    gateway, world, native, mock_server
):
    sdk = client(gateway, world.key)
    question = f"What happened in the markets today? {uuid.uuid4().hex}"
    sdk.responses.create(model=CACHED, input=question)
    again = sdk.responses.with_raw_response.create(model=CACHED, input=question)
    assert again.headers["x-gateway-cache"] == "hit"  # the route does cache

    searched = sdk.responses.with_raw_response.create(
        model=CACHED, input=question, tools=[{"type": "web_search"}]
    )
    repeated = sdk.responses.with_raw_response.create(
        model=CACHED, input=question, tools=[{"type": "web_search"}]
    )

    for answer in (searched, repeated):
        assert answer.headers.get("x-gateway-cache") != "hit"
        assert answer.parse().output[0].type == "web_search_call"
    assert len(upstream(mock_server, question)) == 3


@pytest.mark.parametrize(
    ("model", "tools", "named"),
    [
        (PLAIN, [{"type": "web_search"}], "web_search"),  # native, but not on the list
        (NATIVE, [{"type": "web_search"}, {"type": "file_search"}], "file_search"),
        ("demo", [{"type": "web_search"}], "web_search"),  # a chat-completions deployment
    ],
    ids=["not-forwarded", "another-tool", "translated-route"],
)
def test_a_hosted_tool_the_route_does_not_forward_is_refused_by_name(
    gateway, world, native, mock_server, model, tools, named
):
    marker = uuid.uuid4().hex
    with pytest.raises(openai.BadRequestError) as refused:
        client(gateway, world.key).responses.create(model=model, input=marker, tools=tools)

    error = refused.value.body
    assert isinstance(error, dict)
    assert error["type"] == "invalid_request_error"
    assert f"'{named}' is a hosted tool" in error["message"]
    assert error["param"] == f"tools[{len(tools) - 1}].type"
    assert upstream(mock_server, marker) == []


@pytest.fixture(scope="module")
def guarded_key(gateway: Any, native: None, django_db_blocker: Any) -> str:
    """A key under a policy that masks e-mail addresses in requests."""
    from routing.guardrails import services as guardrails
    from routing.guardrails.core.policy import PolicySpec
    from tests.support.live import wait_for_config
    from tests.support.world import build_tenant

    with django_db_blocker.unblock():
        built = build_tenant("native-guard", teams=["desk"], keys=["guarded"])
        key, material = built.keys["guarded"].api_key, built.keys["guarded"]
        policy = guardrails.guardrail_policy_upsert(
            name="native-guard",
            spec=PolicySpec.model_validate({"pii": {"entities": {"EMAIL_ADDRESS": "mask"}}}),
        )
        guardrails.guardrail_policy_attach(policy=policy, api_key=key)
    wait_for_config(gateway, material.plaintext, NATIVE)
    return material.plaintext


def test_masked_text_never_leaves_in_the_native_body(gateway, guarded_key, mock_server):
    sdk = client(gateway, guarded_key)
    for _ in range(50):  # until the workers' policy tables have the new policy
        marker = uuid.uuid4().hex
        answer = sdk.responses.with_raw_response.create(
            model=NATIVE, input=f"Write to {EMAIL} about it {marker}"
        )
        if not upstream(mock_server, marker):
            break
    else:
        raise AssertionError("the policy never reached the gateway")

    # Masked: sent translated (chat completions), never the client's raw body.
    sent = [r for r in mock_server.requests() if marker in json.dumps(r.get("body"))]
    assert sent and {r["path"] for r in sent[-1:]} == {"/v1/chat/completions"}
    assert EMAIL not in json.dumps(sent[-1]["body"])
    record = wait_for_record(answer.headers["x-request-id"])
    assert record.guardrail_findings and EMAIL not in str(record.request_body)
    # A hosted tool the route forwards cannot go with a translated request: refused by name.
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.responses.create(
            model=NATIVE, input=f"Search for {EMAIL}", tools=[{"type": "web_search"}]
        )
    assert "'web_search' is a hosted tool" in str(refused.value)


@pytest.fixture(scope="module")
def withholding_key(gateway: Any, native: None, django_db_blocker: Any) -> str:
    """A key under a policy that withholds any answer naming Project Falcon."""
    from routing.guardrails import services as guardrails
    from routing.guardrails.core.policy import PolicySpec
    from tests.support.live import wait_for_config
    from tests.support.world import build_tenant

    with django_db_blocker.unblock():
        built = build_tenant("native-withhold", teams=["desk"], keys=["withheld"])
        key, material = built.keys["withheld"].api_key, built.keys["withheld"]
        policy = guardrails.guardrail_policy_upsert(
            name="native-withhold",
            spec=PolicySpec.model_validate(
                {"output": {"rules": [{"name": "falcon", "terms": ["Project Falcon"]}]}}
            ),
        )
        guardrails.guardrail_policy_attach(policy=policy, api_key=key)
    wait_for_config(gateway, material.plaintext, NATIVE)
    return material.plaintext


def test_a_withheld_answer_still_pays_the_searches_its_provider_ran(
    gateway, withholding_key, mock_server
):
    sdk = client(gateway, withholding_key)
    for _ in range(50):  # until the workers' policy tables have the new policy
        marker = uuid.uuid4().hex
        try:
            sdk.responses.create(
                model=NATIVE,
                input=f"Project Falcon: what moved today? {marker}",
                tools=[{"type": "web_search"}],
            )
        except openai.BadRequestError as refused:
            answer = refused
            break
    else:
        raise AssertionError("the policy never reached the gateway")

    assert answer.body["code"] == "output_blocked"  # type: ignore[index]
    assert len(upstream(mock_server, marker)) == 1  # the provider ran the search
    record = wait_for_record(answer.response.headers["x-request-id"])
    assert record.status == "rejected" and record.response_body is None
    tokens = (Decimal(record.prompt_tokens) * 2 + Decimal(record.completion_tokens) * 8) / 10**6
    assert record.cost_usd == tokens + WEB_SEARCH_USD


def test_a_dated_hosted_tool_is_reserved_at_the_price_its_calls_are_charged(gateway, world, native):
    """`web_search_2025_08_26` runs `web_search_call`s, charged as `web_search`: the reservation
    counts it so too, `max_tool_calls` times (it counted nothing for it)."""
    sdk = client(gateway, world.key)

    def worst_case(tools: list[dict[str, Any]], **extra: Any) -> Decimal:
        raw = sdk.responses.with_raw_response.create(
            model=NATIVE,
            input="What moved the markets today?",
            tools=tools,  # type: ignore[arg-type]
            extra_headers={"x-gateway-dry-run": "1"},
            **extra,
        )
        return Decimal(raw.http_response.json()["max_cost_usd"])

    tokens_only = worst_case([])
    dated = [{"type": "web_search_2025_08_26"}]
    assert worst_case(dated, max_tool_calls=5) == tokens_only + 5 * WEB_SEARCH_USD
    assert worst_case(dated) == tokens_only + WEB_SEARCH_USD


@pytest.mark.parametrize("events_before", [2, 6])
def test_a_broken_native_responses_stream_numbers_its_error_after_the_providers_events(
    gateway,
    world,
    native,
    events_before,
):
    """Clients order a Responses stream by `sequence_number`: the gateway's `error` event, sent
    when a Responses-native provider's stream breaks off, follows the provider's numbering."""
    with httpx.stream(
        "POST",
        f"{gateway.api_url}/responses",
        headers={"authorization": f"Bearer {world.key}"},
        json={
            "model": NATIVE,
            "input": f"one two three four five six [mock break_after_chunks={events_before}]",
            "stream": True,
        },
        timeout=10,
    ) as answer:
        body = answer.read().decode()
    events = [
        json.loads(block.split("\ndata: ", 1)[1]) for block in body.split("\n\n") if block.strip()
    ]
    assert [e["type"] for e in events][-1] == "error"
    assert len(events) == events_before + 1
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
