"""The management API's pagination: Ninja's limit/offset, bounded by what SQL can take.

Ninja's own accepts any integer, and an offset past bigint reaches PostgreSQL as a DataError.
Set as NINJA_PAGINATION_CLASS, so every `@paginate` list (prompts and categories too) uses it.
"""

from __future__ import annotations

from ninja import Field, Schema
from ninja.conf import settings as ninja_settings
from ninja.pagination import LimitOffsetPagination

from gateway_site.bounds import BIGINT_MAX


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    class Input(Schema):
        limit: int = Field(ninja_settings.PAGINATION_PER_PAGE, ge=1, le=BIGINT_MAX)
        offset: int = Field(0, ge=0, le=BIGINT_MAX)
