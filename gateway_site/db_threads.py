"""Running ORM work from async code without tying up a pooled connection.

Django's own `sync_to_async` runs ORM calls on a per-request thread whose connection stays checked
out until the request ends; under concurrency that starves the pool. Cache loads on the proxy's hot
path use this instead: a worker thread that returns its connection as soon as the work is done.
"""

from collections.abc import Callable
from typing import TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

T = TypeVar("T")


def _then_release(function: Callable[[], T]) -> T:
    try:
        return function()
    finally:
        connections.close_all()


async def run_db(function: Callable[[], T]) -> T:
    return await sync_to_async(_then_release, thread_sensitive=False)(function)
