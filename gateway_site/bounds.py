"""What PostgreSQL can store, said once for every input schema and form.

A value the database refuses (a NUL in text, an integer past its column, a decimal with more
digits than `max_digits`) must be refused at the door with the field's name, not discovered as a
DataError halfway through a write. Integer bounds match Django's column types on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationInfo, field_validator

INT_MAX = 2**31 - 1  # IntegerField, PositiveIntegerField
SMALLINT_MAX = 2**15 - 1  # PositiveSmallIntegerField
BIGINT_MAX = 2**63 - 1  # BigAutoField ids, BigIntegerField

NUL_MESSAGE = "must not contain NUL characters (\\u0000)"


def contains_nul(value: Any) -> bool:
    """A NUL anywhere in a string, or in the keys and values of nested lists and dicts."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(contains_nul(item) for item in value)
    return False  # numbers, None, and nested models (validated by their own class)


class StorableInput(BaseModel):
    """Mixin for request bodies: no string field, however nested, may hold a NUL.

    PostgreSQL refuses NUL in text and `\\u0000` in jsonb; one check here covers every field,
    list item and dict key of every subclass, so a new field cannot forget it.
    """

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any, info: ValidationInfo) -> Any:
        if contains_nul(value):
            raise ValueError(NUL_MESSAGE)
        return value
