"""Mixed faults: a fraction of requests each meets one of several failures, as real providers do.

`fault_rate` picks which requests fail (evenly spread and reproducible, like `fail_rate`); each
of them gets the next kind of `faults` in turn, so 0.05 with the five default kinds gives exactly
one request in 20 a fault and one in 100 each kind. Kinds:

- "429", "500", "503", "529": an error answer in the endpoint's wire format (a 429 carries
  `Retry-After` when `retry_after` is configured);
- "reset": the TCP connection is reset (RST) before any byte of the answer;
- "stall": no byte for `stall_ms`, then the ordinary answer;
- "reset_after_start": the status line and headers, and for a stream its first event, then RST;
- "stall_after_start": the same start, then nothing for `stall_ms`, then the rest.

The first two failure modes happen before the first byte: a proxy can still try elsewhere. The
"after_start" ones are the ones a proxy cannot hide from a streaming client.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from typing import Any

STATUS_FAULTS: dict[str, int] = {"429": 429, "500": 500, "503": 503, "529": 529}
RESET, STALL = "reset", "stall"
RESET_AFTER_START, STALL_AFTER_START = "reset_after_start", "stall_after_start"
FAULT_KINDS = frozenset({*STATUS_FAULTS, RESET, STALL, RESET_AFTER_START, STALL_AFTER_START})
# What "5% of upstream calls fail" usually means in an incident review: before the first byte.
DEFAULT_FAULTS: tuple[str, ...] = ("429", "500", "503", RESET, STALL)


class FaultPicker:
    """Which requests meet a fault (evenly spread over the sequence) and which kind, in turn."""

    def __init__(self) -> None:
        self.seen = 0
        self.picked = 0

    def next(self, rate: float, kinds: tuple[str, ...]) -> str | None:
        i = self.seen
        self.seen += 1
        # The same spreading as `FailCounter`: request i fails when the running total of
        # `rate` crosses an integer (the epsilon keeps float error from losing one).
        if int((i + 1) * rate + 1e-9) <= int(i * rate + 1e-9):
            return None
        kind = kinds[self.picked % len(kinds)]
        self.picked += 1
        return kind


def reset_connection(send: Callable[..., Any]) -> bool:
    """Reset the TCP connection of the request being answered (uvicorn): an RST, not a FIN.

    ASGI has no message for this, so reach the transport of uvicorn's response cycle, whose
    bound `send` method the app was given; False when that is not available.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger on, timeout 0: closing sends an RST and drops whatever is unsent.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return True


async def reset_now(send: Callable[..., Any]) -> None:
    if not reset_connection(send):
        raise RuntimeError("this server gives no access to its connection: cannot reset it")
    # Let the server see the connection lost before the app returns, so it does not try to
    # answer the request itself (a 500 on a dead socket).
    await asyncio.sleep(0)
