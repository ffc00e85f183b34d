"""Non-streamed answers, usage and error bodies, both ways."""

from __future__ import annotations

import orjson
import pytest

from routing.core.translate import (
    RAW_ARGUMENTS_KEY,
    anthropic_error_to_openai,
    anthropic_response_to_openai,
    anthropic_usage,
    openai_error_to_anthropic,
    openai_response_to_anthropic,
    openai_usage,
)
from routing.core.types import Usage

MESSAGE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "The user wants weather.", "signature": "EqQB"},
        {"type": "text", "text": "Let me check "},
        {"type": "text", "text": "that."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"location": "Paris", "unit": "c"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 100,
        "output_tokens": 40,
        "cache_read_input_tokens": 2000,
        "cache_creation_input_tokens": 50,
    },
}


def test_a_message_becomes_a_chat_completion():
    result = anthropic_response_to_openai(MESSAGE, created=1700000000)
    assert result == {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "claude-sonnet-4-5-20250929",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check that.",
                    "tool_calls": [
                        {
                            "id": "toolu_01A09q90qw90lq917835lq9",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"location":"Paris","unit":"c"}',
                            },
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 2150,
            "completion_tokens": 40,
            "total_tokens": 2190,
            "prompt_tokens_details": {"cached_tokens": 2000},
            "cache_creation_input_tokens": 50,
        },
    }


def test_created_defaults_to_now():
    import time

    before = int(time.time())
    assert anthropic_response_to_openai(MESSAGE)["created"] >= before


def test_only_tool_use_gives_null_content_and_nothing_gives_empty_content():
    tool_only = {**MESSAGE, "content": [MESSAGE["content"][3]]}
    assert anthropic_response_to_openai(tool_only)["choices"][0]["message"]["content"] is None
    empty = {**MESSAGE, "content": [], "stop_reason": "max_tokens"}
    assert anthropic_response_to_openai(empty)["choices"][0]["message"] == {
        "role": "assistant",
        "content": "",
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(stop_reason, finish_reason):
    body = {**MESSAGE, "stop_reason": stop_reason}
    assert anthropic_response_to_openai(body)["choices"][0]["finish_reason"] == finish_reason


def test_usage_counts_cache_reads_and_writes_as_prompt_tokens():
    usage = openai_usage(MESSAGE["usage"])
    assert Usage.from_openai(usage) == Usage(
        prompt_tokens=2150, completion_tokens=40, cached_tokens=2000
    )


def test_usage_without_cache_fields_has_no_cache_creation_key():
    assert openai_usage({"input_tokens": 5, "output_tokens": 6}) == {
        "prompt_tokens": 5,
        "completion_tokens": 6,
        "total_tokens": 11,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_usage_round_trips_exactly():
    assert anthropic_usage(openai_usage(MESSAGE["usage"])) == MESSAGE["usage"]


def test_a_chat_completion_becomes_a_message():
    completion = {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4.1",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Sure.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": [1, 2]}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "g", "arguments": '{"a": '},
                        },
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 30,
            "completion_tokens": 7,
            "total_tokens": 37,
            "prompt_tokens_details": {"cached_tokens": 10},
        },
    }
    # Anthropic's id prefixes in front of the provider's ids (the client's own format).
    assert openai_response_to_anthropic(completion) == {
        "id": "msg_chatcmpl-abc",
        "type": "message",
        "role": "assistant",
        "model": "gpt-4.1",
        "content": [
            {"type": "text", "text": "Sure."},
            {"type": "tool_use", "id": "toolu_call_1", "name": "f", "input": {"a": [1, 2]}},
            {
                "type": "tool_use",
                "id": "toolu_call_2",
                "name": "g",
                "input": {RAW_ARGUMENTS_KEY: '{"a": '},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 20,
            "output_tokens": 7,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 10,
        },
    }


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_finish_reasons_map_to_stop_reasons(finish_reason, stop_reason):
    completion = {
        "id": "c",
        "model": "m",
        "choices": [{"message": {"content": "x"}, "finish_reason": finish_reason}],
    }
    assert openai_response_to_anthropic(completion)["stop_reason"] == stop_reason


def test_a_refusal_becomes_text():
    completion = {
        "choices": [{"message": {"content": None, "refusal": "I can't."}, "finish_reason": "stop"}]
    }
    assert openai_response_to_anthropic(completion)["content"] == [
        {"type": "text", "text": "I can't."}
    ]


@pytest.mark.parametrize(
    ("status", "anthropic_type", "openai_type"),
    [
        (400, "invalid_request_error", "invalid_request_error"),
        (401, "authentication_error", "authentication_error"),
        (403, "permission_error", "permission_error"),
        (404, "not_found_error", "not_found_error"),
        (413, "request_too_large", "invalid_request_error"),
        (429, "rate_limit_error", "rate_limit_exceeded"),
        (500, "api_error", "server_error"),
        (529, "overloaded_error", "server_error"),
    ],
)
def test_anthropic_errors_become_openai_errors_keeping_the_message(
    status, anthropic_type, openai_type
):
    body = orjson.dumps(
        {"type": "error", "error": {"type": anthropic_type, "message": "Nope: details"}}
    )
    assert orjson.loads(anthropic_error_to_openai(status, body)) == {
        "error": {
            "message": "Nope: details",
            "type": openai_type,
            "param": None,
            "code": anthropic_type,
        }
    }


@pytest.mark.parametrize(
    ("status", "expected_type"), [(502, "server_error"), (418, "invalid_request_error")]
)
def test_a_non_json_error_body_is_wrapped(status, expected_type):
    error = orjson.loads(anthropic_error_to_openai(status, b"<html>Bad gateway</html>"))["error"]
    assert error == {
        "message": "<html>Bad gateway</html>",
        "type": expected_type,
        "param": None,
        "code": None,
    }


def test_an_empty_error_body_says_the_status():
    error = orjson.loads(anthropic_error_to_openai(503, b""))["error"]
    assert error["message"] == "provider answered 503"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, "rate_limit_error"), (401, "authentication_error"), (502, "api_error")],
)
def test_openai_errors_become_anthropic_errors(status, kind):
    body = orjson.dumps(
        {"error": {"message": "Slow down", "type": "requests", "param": None, "code": "x"}}
    )
    assert orjson.loads(openai_error_to_anthropic(status, body)) == {
        "type": "error",
        "error": {"type": kind, "message": "Slow down"},
    }
