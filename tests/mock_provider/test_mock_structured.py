"""Structured output: the mock answers a JSON Schema with JSON that follows it."""

from __future__ import annotations

import json
from typing import Any, Literal

import anthropic
import httpx
import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from mock_provider.structured import schema_instance


class Line(BaseModel):
    sku: str = Field(min_length=6)
    quantity: int = Field(ge=3)
    price: float = Field(gt=0)


class Order(BaseModel):
    id: str
    status: Literal["open", "shipped"]
    lines: list[Line] = Field(min_length=2)
    note: str | None
    placed_at: str = Field(json_schema_extra={"format": "date-time"})


class Ticket(BaseModel):
    """Anthropic's structured outputs take no numeric or length bounds (its SDK moves them into
    descriptions and checks them itself), so its test asks for types and enums only."""

    title: str
    priority: Literal["low", "high"]
    tags: list[str]
    estimate_hours: float | None


class Tree(BaseModel):
    name: str
    children: list[Tree]


SCHEMAS: list[dict[str, Any]] = [
    Order.model_json_schema(),
    Tree.model_json_schema(),
    {"type": "array", "items": {"type": "integer", "exclusiveMinimum": 4}, "maxItems": 1},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "boolean"}}, "required": ["a"]}]},
    {"anyOf": [{"type": "null"}, {"type": "string", "enum": ["x", "y"]}]},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=["order", "tree", "bounds", "allof", "anyof"])
def test_the_value_follows_the_schema(schema: dict[str, Any]) -> None:
    jsonschema.validate(schema_instance(schema), schema)


def test_the_openai_sdk_parses_the_answer_into_its_model(oai: openai.OpenAI) -> None:
    done = oai.chat.completions.parse(
        model="mock-gpt",
        messages=[{"role": "user", "content": "my order"}],
        response_format=Order,
    )
    order = done.choices[0].message.parsed
    assert isinstance(order, Order) and len(order.lines) == 2 and order.status == "open"


def test_json_mode_wraps_the_usual_reply(http: httpx.Client) -> None:
    body = {
        "model": "mock-gpt",
        "messages": [{"role": "user", "content": "hello there"}],
        "response_format": {"type": "json_object"},
    }
    text = http.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
    assert json.loads(text) == {"reply": "Mock reply to: hello there"}


def test_the_anthropic_sdk_parses_the_answer_into_its_model(claude: anthropic.Anthropic) -> None:
    done = claude.messages.parse(
        model="mock-claude",
        max_tokens=500,
        messages=[{"role": "user", "content": "my order"}],
        output_format=Ticket,
    )
    assert isinstance(done.parsed_output, Ticket) and done.parsed_output.priority == "low"


def test_a_streamed_structured_answer_joins_into_the_same_json(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(
        model="mock-gpt",
        messages=[{"role": "user", "content": "my order"}],
        response_format=Order,
    ) as stream:
        final = stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, Order)


def test_a_recursive_schema_ends() -> None:
    schema = {
        "type": "object",
        "properties": {"next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}},
        "required": ["next"],
    }
    jsonschema.validate(schema_instance(schema), schema)
