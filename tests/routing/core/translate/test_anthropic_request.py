"""OpenAI chat-completions request -> Anthropic Messages request, rule by rule."""

from __future__ import annotations

from typing import Any

import pytest

from routing.core.translate import (
    DEFAULT_MAX_TOKENS,
    RAW_ARGUMENTS_KEY,
    openai_request_to_anthropic,
)


def translate(messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return openai_request_to_anthropic({"model": "claude-x", "messages": messages, **fields})


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


def test_a_plain_conversation_keeps_model_and_turns_as_text_blocks():
    body = translate(
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "How are you?"},
        ]
    )
    assert body == {
        "model": "claude-x",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [
            {"role": "user", "content": [text("Hi")]},
            {"role": "assistant", "content": [text("Hello!")]},
            {"role": "user", "content": [text("How are you?")]},
        ],
    }


def test_system_and_developer_messages_join_into_the_top_level_system_string():
    body = translate(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [text("Answer in French."), text("No emoji.")]},
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": "Late instruction."},
        ]
    )
    assert body["system"] == "Be brief.\n\nAnswer in French.\n\nNo emoji.\n\nLate instruction."
    assert body["messages"] == [{"role": "user", "content": [text("Hi")]}]


def test_no_system_message_means_no_system_field():
    assert "system" not in translate([{"role": "user", "content": "Hi"}])


def test_a_system_part_with_cache_control_makes_system_a_list_of_blocks():
    cached = {"type": "text", "text": "Long manual", "cache_control": {"type": "ephemeral"}}
    body = translate([{"role": "system", "content": [cached]}, {"role": "user", "content": "Q"}])
    assert body["system"] == [cached]


def test_cache_control_on_user_parts_is_copied_to_the_blocks():
    part = {"type": "text", "text": "doc", "cache_control": {"type": "ephemeral"}}
    body = translate([{"role": "user", "content": [part]}])
    assert body["messages"][0]["content"] == [part]


def test_consecutive_messages_of_one_role_are_merged():
    body = translate(
        [
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": "three"},
            {"role": "assistant", "content": "four"},
        ]
    )
    assert body["messages"] == [
        {"role": "user", "content": [text("one"), text("two")]},
        {"role": "assistant", "content": [text("three"), text("four")]},
    ]


def test_empty_text_is_dropped_and_so_is_a_message_left_empty():
    body = translate(
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": [text(""), text("again")]},
        ]
    )
    assert body["messages"] == [{"role": "user", "content": [text("Hi"), text("again")]}]


def test_a_data_url_image_becomes_a_base64_source_with_its_media_type():
    part = {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"},
    }
    body = translate([{"role": "user", "content": [text("What is it?"), part]}])
    assert body["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }


def test_a_url_encoded_data_url_is_base64_encoded():
    part = {"type": "image_url", "image_url": {"url": "data:image/svg+xml,%3Csvg%2F%3E"}}
    block = translate([{"role": "user", "content": [part]}])["messages"][0]["content"][0]
    assert block["source"] == {"type": "base64", "media_type": "image/svg+xml", "data": "PHN2Zy8+"}


def test_an_http_image_url_becomes_a_url_source():
    part = {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    block = translate([{"role": "user", "content": [part]}])["messages"][0]["content"][0]
    assert block == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/cat.jpg"},
    }


def test_a_pdf_file_part_becomes_a_document_block():
    part = {
        "type": "file",
        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
    }
    block = translate([{"role": "user", "content": [part]}])["messages"][0]["content"][0]
    assert block == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        "title": "a.pdf",
    }


def test_parts_anthropic_cannot_take_are_dropped():
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    uploaded = {"type": "file", "file": {"file_id": "file-123"}}
    body = translate([{"role": "user", "content": [audio, uploaded, text("hi")]}])
    assert body["messages"][0]["content"] == [text("hi")]


def test_assistant_tool_calls_become_tool_use_blocks_after_the_text():
    body = translate(
        [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {
                        "id": "call_abc",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_def",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": ""},
                    },
                ],
            },
        ]
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            text("Let me look."),
            {
                "type": "tool_use",
                "id": "call_abc",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
            {"type": "tool_use", "id": "call_def", "name": "get_time", "input": {}},
        ],
    }


@pytest.mark.parametrize("arguments", ['{"city": "Par', "[1, 2]", '"just a string"'])
def test_arguments_that_are_not_a_json_object_are_kept_verbatim_under_a_wrapper(arguments):
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    body = translate([{"role": "assistant", "content": None, "tool_calls": [call]}])
    assert body["messages"][0]["content"][0]["input"] == {RAW_ARGUMENTS_KEY: arguments}


def test_tool_ids_with_characters_anthropic_forbids_are_sanitized_consistently():
    call = {
        "id": "functions.lookup:0",
        "type": "function",
        "function": {"name": "lookup", "arguments": "{}"},
    }
    body = translate(
        [
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "functions.lookup:0", "content": "ok"},
        ]
    )
    assert body["messages"][0]["content"][0]["id"] == "functions_lookup_0"
    assert body["messages"][1]["content"][0]["tool_use_id"] == "functions_lookup_0"


def test_consecutive_tool_messages_become_tool_results_of_one_user_turn():
    body = translate(
        [
            {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_b", "content": [text("12:00")]},
            {"role": "user", "content": "Thanks, and?"},
        ]
    )
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_a", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_b", "content": [text("12:00")]},
                text("Thanks, and?"),
            ],
        }
    ]


def test_tool_results_come_first_in_their_user_turn():
    body = translate(
        [
            {"role": "user", "content": "Note:"},
            {"role": "tool", "tool_call_id": "call_a", "content": "done"},
        ]
    )
    assert [block["type"] for block in body["messages"][0]["content"]] == ["tool_result", "text"]


def test_an_empty_tool_result_keeps_an_empty_string_content():
    body = translate([{"role": "tool", "tool_call_id": "call_a", "content": None}])
    assert body["messages"][0]["content"][0]["content"] == ""
