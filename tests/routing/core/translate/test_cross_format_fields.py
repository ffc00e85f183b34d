"""What a cross-format route maps, and what it names instead of dropping silently."""

from __future__ import annotations

import pytest

from routing.core.translate import (
    UnsupportedRequest,
    anthropic_request_to_openai,
    openai_request_to_anthropic,
    responses_request_to_openai,
    untranslatable_fields,
)

BASE = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("extra", "effort"),
    [
        ({"thinking": {"type": "adaptive"}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 32000}}, "high"),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}, "low"),
        ({"output_config": {"effort": "max"}}, "high"),
        ({"thinking": {"type": "disabled"}}, None),
    ],
)
def test_thinking_and_effort_become_reasoning_effort(extra, effort):
    assert anthropic_request_to_openai({**BASE, **extra}).get("reasoning_effort") == effort


def test_fields_without_an_openai_form_are_named():
    body = {
        **BASE,
        "thinking": {"type": "adaptive"},
        "top_k": 5,
        "context_management": {},
        "output_config": {"effort": "high", "task_budget": 3},
        "tools": [{"name": "f", "input_schema": {}}, {"type": "code_execution_20250825"}],
    }
    assert untranslatable_fields(body) == [
        "context_management",
        "top_k",
        "tools[1] (code_execution_20250825)",
        "output_config.task_budget",
    ]
    # Back to Anthropic's format through the internal form, the mapped fields are lost too.
    assert untranslatable_fields(body, round_trip=True) == [
        "context_management",
        "output_config",
        "thinking",
        "top_k",
        "tools[1] (code_execution_20250825)",
    ]


def test_a_plain_body_loses_nothing():
    assert untranslatable_fields(BASE) == [] == untranslatable_fields(BASE, round_trip=True)


@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ([{"type": "function", "name": "a"}, {"type": "custom", "name": "a"}], "tools[1].name"),
        (
            [{"type": "namespace", "name": "n", "tools": [{"type": "web_search"}]}],
            "tools[0].tools[0].type",
        ),
        ([{"type": "tool_search", "execution": "server"}], "tools[0].type"),
    ],
)
def test_ambiguous_or_hosted_tools_are_refused_by_name(tools, param):
    with pytest.raises(UnsupportedRequest) as refused:
        responses_request_to_openai({"model": "m", "input": "hi", "tools": tools})
    assert refused.value.param == param


def test_tools_a_client_tool_search_loaded_join_the_request():
    chat, tools = responses_request_to_openai(
        {
            "model": "m",
            "input": [
                {"type": "tool_search_call", "call_id": "s1", "arguments": {"query": "cal"}},
                {
                    "type": "tool_search_output",
                    "call_id": "s1",
                    "tools": [
                        {
                            "type": "namespace",
                            "name": "calendar",
                            "tools": [{"type": "function", "name": "create_event"}],
                        }
                    ],
                },
            ],
            "tools": [{"type": "tool_search", "execution": "client", "parameters": {}}],
        }
    )
    names = [t["function"]["name"] for t in chat["tools"]]
    assert names == ["tool_search", "create_event"]
    assert tools.origins["create_event"].namespace == "calendar"
    assert chat["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "s1",
        "content": "Tools loaded: calendar",
    }


def test_a_json_schema_response_format_becomes_anthropic_structured_output():
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    chat = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": schema}},
    }
    body = openai_request_to_anthropic(chat)
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    plain = openai_request_to_anthropic({**chat, "response_format": {"type": "json_object"}})
    assert "output_config" not in plain
