"""The audit writer's outage probe: a database that fails again while the owed records are being
written is probed again, and the records are written once it is back (it stayed refusing every
record until a restart)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from audit import writer as writer_module
from audit.writer import AuditWriter, _Owed


def test_a_database_lost_again_while_paying_what_is_owed_is_probed_until_it_is_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(writer_module, "PROBE_EVERY_S", 0.01)
    monkeypatch.setattr(writer_module.connection, "vendor", "postgresql")
    written: list[str] = []

    async def scenario() -> tuple[bool, list[str]]:
        writer = AuditWriter()
        attempts = [0]

        async def reachable() -> bool:
            return True

        async def submit(op: Any) -> None:
            attempts[0] += 1
            if attempts[0] == 1:  # the first write after the probe: the database is gone again
                error = ConnectionError("server closed the connection unexpectedly")
                writer.database_failed(error)
                raise error

        monkeypatch.setattr(writer, "_reachable", reachable)
        monkeypatch.setattr(writer, "_submit", submit)
        writer._owed.append(_Owed(op=object(), on_written=lambda: written.append("paid")))  # type: ignore[arg-type]
        writer.database_failed(ConnectionError("connection refused"))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if writer.available() and not writer._owed:
                break
        return writer.available(), written

    available, paid = asyncio.run(scenario())

    assert available
    assert paid == ["paid"]
