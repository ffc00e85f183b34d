"""A worker's shutdown waits for what the requests left behind, and for what that work starts:
a stream's completion settles its reservation in a task of its own, once its record is written
(the graceful-shutdown drill once saw a reservation held after a clean stop)."""

from __future__ import annotations

import asyncio

import pytest

from routing.runtime import GatewayRuntime

pytestmark = pytest.mark.asyncio


def _runtime() -> GatewayRuntime:
    runtime = GatewayRuntime()

    async def no_journals() -> None:  # recovering dead workers' journals is not the subject
        return None

    runtime._recover_journals = no_journals  # type: ignore[method-assign]
    return runtime


async def test_shutdown_waits_for_work_started_by_background_work() -> None:
    runtime = _runtime()
    done: list[str] = []

    async def settle() -> None:
        await asyncio.sleep(0.05)
        done.append("settled")

    async def complete_record() -> None:
        await asyncio.sleep(0.05)
        done.append("recorded")
        runtime.spawn(settle())  # as _complete_record → Call.release → quota_gate.settle

    runtime.spawn(complete_record())
    await runtime.aclose()
    assert done == ["recorded", "settled"]


async def test_shutdown_sends_the_settlements_no_admission_will_carry() -> None:
    runtime = _runtime()
    drained: list[bool] = []
    real_drain = runtime.quotas.store.drain

    async def drain() -> None:
        await real_drain()
        drained.append(True)

    runtime.quotas.store.drain = drain  # type: ignore[method-assign]
    await runtime.aclose()
    assert drained == [True]
