"""Fixtures of the in-process proxy tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from routing.runtime import close_runtime


@pytest.fixture
async def in_process_proxy() -> AsyncIterator[None]:
    """The proxy served by Django's AsyncClient in this process; its runtime closed after."""
    yield
    await close_runtime()
    # The key and route lookups ran on asgiref's shared thread: close its connection too.
    await sync_to_async(connections.close_all)()
