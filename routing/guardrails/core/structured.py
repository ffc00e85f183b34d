"""Structured output: does an answer follow the JSON schema the request (or its route) asked for?"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from routing.guardrails.core.policy import Policy

JSON = dict[str, Any]
_OBJECT: Mapping[str, Any] = {"type": "object"}
_MAX_CACHED = 256


class SchemaCache:
    """Compiled validators by schema; requests of one app send the same schema again and again."""

    def __init__(self) -> None:
        self._validators: dict[bytes, Draft202012Validator] = {}

    def validator(self, schema: Mapping[str, Any]) -> Draft202012Validator:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        found = self._validators.get(key)
        if found is None:
            if len(self._validators) >= _MAX_CACHED:
                self._validators.clear()
            found = self._validators[key] = Draft202012Validator(schema)
        return found


def wanted_schema(payload: JSON, policy: Policy) -> Mapping[str, Any] | None:
    """The schema an answer must follow: the request's `response_format`, else the route's."""
    if policy.structured is None:
        return None
    response_format = payload.get("response_format")
    if isinstance(response_format, dict):
        if response_format.get("type") == "json_schema":
            spec = response_format.get("json_schema") or {}
            schema = spec.get("schema") if isinstance(spec, dict) else None
            return schema if isinstance(schema, dict) else _OBJECT
        if response_format.get("type") == "json_object":
            return _OBJECT
    return policy.structured.json_schema


def schema_problem(parsed: JSON, schema: Mapping[str, Any], cache: SchemaCache) -> str | None:
    """None when the first choice's content is JSON that follows `schema`, else what is wrong."""
    choices = parsed.get("choices") or [{}]
    message = (choices[0] or {}).get("message") or {}
    content = message.get("content")
    if not isinstance(content, str):
        return "the answer has no text content"
    try:
        document = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        return f"the answer is not JSON ({exc})"
    try:
        error = next(iter(cache.validator(schema).iter_errors(document)), None)
    except SchemaError as exc:
        return f"the schema itself is invalid ({exc.message})"
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"the answer does not follow the schema at {where}: {error.message}"
