"""The OpenAI Responses wire format, through the official openai SDK."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from mock_provider.testing import MockServer

LOOKUP: Any = {
    "type": "function",
    "name": "lookup",
    "parameters": {
        "type": "object",
        "properties": {"client_id": {"type": "string"}},
        "required": ["client_id"],
    },
}


def test_a_response_answers_the_last_user_text_and_counts_words(oai: openai.OpenAI) -> None:
    response = oai.responses.create(
        model="mock-gpt", instructions="Be brief.", input="How is the Smith portfolio?"
    )

    assert response.status == "completed" and response.id.startswith("resp_")
    assert response.output_text == "Mock reply to: How is the Smith portfolio?"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (7, 8)


def test_hosted_tools_offered_are_run_before_the_answer(oai: openai.OpenAI) -> None:
    response = oai.responses.create(
        model="mock-gpt",
        input="rates today",
        tools=[{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]}],
    )

    kinds = [item.type for item in response.output]
    assert kinds == ["web_search_call", "file_search_call", "message"]
    assert response.output[0].action.query == "rates today"  # type: ignore[union-attr]


def test_a_function_call_then_its_output_streamed(oai: openai.OpenAI) -> None:
    first = oai.responses.create(model="mock-gpt", input="Allocation of C-9?", tools=[LOOKUP])
    (call,) = first.output
    assert call.type == "function_call" and call.arguments == '{"client_id": "mock"}'

    with oai.responses.stream(
        model="mock-gpt",
        input=[
            {"role": "user", "content": "Allocation of C-9?"},
            {"type": "function_call", "call_id": call.call_id, "name": "lookup", "arguments": "{}"},
            {"type": "function_call_output", "call_id": call.call_id, "output": "60/40 split"},
        ],
        tools=[LOOKUP],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()

    assert final.output_text == "Tool result received: 60/40 split"
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 5


def test_a_bad_request_is_refused_in_openais_format(provider: MockServer) -> None:
    answer = httpx.post(
        provider.base_url + "/v1/responses", json={"model": "mock-gpt", "input": 7}, timeout=5
    )

    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"
