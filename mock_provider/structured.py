"""Structured output: a JSON value that satisfies the JSON Schema a request asks its answer to
follow (OpenAI's `response_format`, Anthropic's `output_config.format` / `output_format`).

Deterministic, like every answer of the mock: an object holds every declared property (strict
schemas require them all), an array `minItems` elements (at least one, within `maxItems`), a
string its `const` / first `enum` value / a value of its `format` / "mock" padded to
`minLength`, a number its `minimum` (else 1 / 1.5); `anyOf` / `oneOf` take their first branch
that is not null, `allOf` its branches merged, `$ref` follows `#/$defs/...` and
`#/definitions/...`. Past a few levels of recursion arrays are empty and only required
properties are filled, so a recursive schema still ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MAX_DEPTH = 6
_GIVE_UP_DEPTH = 40
_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00",
    "email": "mock@example.com",
    "uri": "https://example.com/mock",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def schema_instance(schema: Any, root: Mapping[str, Any] | None = None, depth: int = 0) -> Any:
    """A value valid against `schema` (`root`: where `$ref`s resolve; the schema itself)."""
    if not isinstance(schema, Mapping) or depth > _GIVE_UP_DEPTH:
        return "mock" if depth <= _GIVE_UP_DEPTH else None  # a schema with no finite value
    root = schema if root is None else root
    if isinstance(schema.get("$ref"), str):
        return schema_instance(_resolve(root, schema["$ref"]), root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            # Deep in a recursive schema, a null branch ends it.
            null_first = depth >= _MAX_DEPTH
            chosen = next((o for o in options if (_type(o) == "null") == null_first), options[0])
            return schema_instance(chosen, root, depth + 1)
    if isinstance(schema.get("allOf"), list):
        return schema_instance(_merged(schema, root), root, depth + 1)
    kind = _type(schema)
    if kind == "object":
        return _object(schema, root, depth)
    if kind == "array":
        return _array(schema, root, depth)
    if kind == "string":
        text = _FORMATS.get(str(schema.get("format")), "mock")
        return text.ljust(int(schema.get("minLength") or 0), "k")
    if kind in ("integer", "number"):
        step = 1 if kind == "integer" else 0.5
        if isinstance(schema.get("minimum"), int | float):
            return schema["minimum"]
        if isinstance(schema.get("exclusiveMinimum"), int | float):
            return schema["exclusiveMinimum"] + step
        return 1 if kind == "integer" else 1.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "mock"  # no type: anything is valid


def _merged(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """An `allOf` as one schema: its parts' properties and required names together."""
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    properties = dict(merged.get("properties") or {})
    required = list(merged.get("required") or [])
    for part in schema["allOf"]:
        if isinstance(part, Mapping) and isinstance(part.get("$ref"), str):
            part = _resolve(root, part["$ref"])
        if not isinstance(part, Mapping):
            continue
        merged.update({k: v for k, v in part.items() if k not in ("properties", "required")})
        properties.update(part.get("properties") or {})
        required += list(part.get("required") or [])
    return {**merged, "properties": properties, "required": required}


def _type(schema: Any) -> str | None:
    if not isinstance(schema, Mapping):
        return None
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        return "object"
    if kind is None and "items" in schema:
        return "array"
    return kind if isinstance(kind, str) else None


def _resolve(root: Mapping[str, Any], ref: str) -> Any:
    node: Any = root
    if ref == "#":
        return root
    for part in ref.removeprefix("#/").split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return {}
        node = node[part]
    return node


def _object(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> dict[str, Any]:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    names = list(properties)
    if depth >= _MAX_DEPTH:
        required = schema.get("required")
        names = [n for n in names if isinstance(required, list) and n in required]
    return {str(name): schema_instance(properties[name], root, depth + 1) for name in names}


def _array(schema: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> list[Any]:
    count = int(schema.get("minItems") or 0)
    if count == 0 and depth < _MAX_DEPTH:
        count = 1
    if isinstance(schema.get("maxItems"), int):
        count = min(count, schema["maxItems"])
    items = schema.get("items")
    if isinstance(schema.get("prefixItems"), list):
        return [schema_instance(item, root, depth + 1) for item in schema["prefixItems"]]
    return [schema_instance(items, root, depth + 1) for _ in range(count)]


def requested_schema(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The schema a request's answer must follow; `{}` for plain JSON mode; None for text."""
    fmt = body.get("response_format")  # OpenAI chat
    if isinstance(fmt, Mapping):
        if fmt.get("type") == "json_schema":
            spec = fmt.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, Mapping) else None
            return schema if isinstance(schema, Mapping) else {}
        if fmt.get("type") == "json_object":
            return {}
        return None
    config = body.get("output_config")  # Anthropic, and its earlier beta field
    fmt = config.get("format") if isinstance(config, Mapping) else body.get("output_format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        return schema if isinstance(schema, Mapping) else {}
    return None
