"""A Responses-native deployment's answer read in the internal chat form (what guardrails, cost
and the audit record see), and hosted tools a route forwards left out of that form."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from mock_provider.behaviour import Prompt, Reply
from mock_provider.responses_format import response_object, response_stream
from routing.core.stream_tap import StreamTap
from routing.core.translate import UnsupportedRequest, responses_request_to_openai
from routing.core.translate.responses_native import (
    ResponsesToChatStream,
    hosted_tool_calls,
    responses_to_chat,
)

SEARCH = {"type": "web_search"}
LOOKUP = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}


def provider_answer(
    *, text: str | None = "Rates rose.", tool: str | None = None
) -> tuple[dict[str, Any], Prompt, Reply]:
    prompt = Prompt(
        texts=["What happened?"],
        last_user_text="What happened?",
        tool_result_text=None,
        tool=None,
        max_tokens=None,
        hosted_tools=("web_search",),
    )
    reply = Reply(
        text=None if tool else text,
        tool_name=tool,
        arguments='{"q": "rates"}' if tool else None,
        tool_input=None,
        prompt_tokens=7,
        completion_tokens=3,
        truncated=False,
    )
    body = {"model": "m", "input": "What happened?", "tools": [SEARCH]}
    return body, prompt, reply


def test_a_whole_answer_reads_as_a_chat_completion_with_the_tools_the_provider_ran():
    body, prompt, reply = provider_answer()
    response = response_object(body, prompt, reply, "resp_1", "call_1")

    chat = responses_to_chat(response)

    message = chat["choices"][0]["message"]
    assert message["content"] == "Rates rose." and chat["choices"][0]["finish_reason"] == "stop"
    assert chat["usage"]["prompt_tokens"] == 7 and chat["usage"]["completion_tokens"] == 3
    (search,) = hosted_tool_calls(chat)
    assert search["type"] == "web_search_call" and search["status"] == "completed"
    # What was looked up, never the pages that came back.
    assert search["action"] == {"type": "search", "query": "What happened?"}
    assert "tool_calls" not in message


def test_a_function_call_in_the_answer_is_a_chat_tool_call():
    body, prompt, reply = provider_answer(tool="lookup")
    chat = responses_to_chat(response_object(body, prompt, reply, "resp_1", "call_1"))

    choice = chat["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup", "arguments": '{"q": "rates"}'},
        }
    ]


@pytest.mark.parametrize("tool", [None, "lookup"], ids=["text", "function-call"])
def test_a_stream_tapped_as_it_comes_says_what_the_whole_answer_says(tool):
    body, prompt, reply = provider_answer(tool=tool)
    events = response_stream(body, prompt, reply, "resp_1", "call_1")
    translator, tap = ResponsesToChatStream(), StreamTap()
    tap.hosted_calls = translator.hosted

    for event in events:
        data = orjson.loads(event.split(b"\ndata: ", 1)[1])
        for chunk in translator.feed(data):
            tap.feed(chunk)

    assert translator.done
    whole = responses_to_chat(orjson.loads(events[-1].split(b"\ndata: ", 1)[1])["response"])
    streamed = tap.assembled_response()
    message, expected = streamed["choices"][0]["message"], whole["choices"][0]["message"]
    assert message["content"] == expected["content"]
    assert message.get("tool_calls") == expected.get("tool_calls")
    assert message["hosted_tool_calls"] == expected["hosted_tool_calls"]
    assert streamed["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert tap.usage is not None and tap.usage.completion_tokens == 3


def test_a_forwarded_hosted_tool_is_left_out_of_the_chat_form_and_named():
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "Earlier question"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"role": "assistant", "content": "Earlier answer"},
            {"role": "user", "content": "And now?"},
        ],
        "tools": [SEARCH, LOOKUP],
        "tool_choice": {"type": "web_search"},
    }

    chat, tools = responses_request_to_openai(body, forward=frozenset({"web_search"}))

    assert tools.forwarded == ["web_search"] and tools.dropped == []
    assert [t["function"]["name"] for t in chat["tools"]] == ["lookup"]
    assert "tool_choice" not in chat
    assert [m["role"] for m in chat["messages"]] == ["user", "assistant", "user"]
    # Without the forward list, the same request is refused by the tool's name.
    with pytest.raises(UnsupportedRequest, match="'web_search' is a hosted tool"):
        responses_request_to_openai({**body, "input": "And now?"})


def test_a_hosted_call_counts_from_when_it_starts_and_once():
    """A stream cut while a search runs still pays for it; a finished one is counted once."""
    stream = ResponsesToChatStream()
    started = {"type": "web_search_call", "id": "ws_1", "status": "in_progress"}
    stream.feed({"type": "response.output_item.added", "output_index": 1, "item": started})
    assert [call["status"] for call in stream.hosted] == ["in_progress"]
    done = {**started, "status": "completed", "action": {"type": "search", "query": "rates"}}
    stream.feed({"type": "response.output_item.done", "output_index": 1, "item": done})
    assert stream.hosted == [
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": done["action"]}
    ]
