"""A WebSocket to the gateway gets 426 Upgrade Required: Codex opens one to `/v1/responses`
before streaming over HTTP, and takes only that answer as "use HTTP" without retrying."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def test_a_websocket_upgrade_is_answered_426(gateway, world):
    async def attempt() -> InvalidStatus:
        url = gateway.url.replace("http://", "ws://") + "/v1/responses"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers={"authorization": f"Bearer {world.key}"}):
                pass
        return refused.value

    refusal = asyncio.run(attempt())
    assert refusal.response.status_code == 426
    error = json.loads(refusal.response.body)["error"]
    assert error["code"] == "websocket_unsupported" and "HTTP" in error["message"]
