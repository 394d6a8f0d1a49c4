"""The clocks: the system's, and the event loop's used in virtual time."""

from __future__ import annotations

import asyncio

from custom_components.nest_streams.core.clock import SystemClock
from custom_components.nest_streams.core.errors import QuotaExceeded

from .common import EPOCH, MONOTONIC_START, JumpingClock, virtual


def test_the_loop_clock_starts_at_its_epoch_and_jumps() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(100)  # the loop's clock moved on
        clk = JumpingClock(EPOCH, loop)
        seen = [clk.now() - EPOCH, clk.monotonic()]
        clk.jump(10)
        clk.jump(10)
        clk.jump(-5)
        await clk.sleep(-1)  # no wait
        seen += [clk.now() - EPOCH, clk.monotonic()]
        await clk.sleep(2)
        seen += [clk.now() - EPOCH, clk.monotonic()]
        return seen

    start = MONOTONIC_START
    assert virtual(main()) == [0, start + 100, 15, start + 100, 17, start + 102]


def test_the_system_clock_does_not_wait_for_a_negative_time() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        clk = SystemClock()
        await clk.sleep(-5)
        first = loop.time()
        await clk.sleep(0.5)
        return [first, loop.time()]

    assert virtual(main()) == [MONOTONIC_START, MONOTONIC_START + 0.5]


def test_a_quota_error_keeps_its_message() -> None:
    assert str(QuotaExceeded("429 RESOURCE_EXHAUSTED")) == "429 RESOURCE_EXHAUSTED"
    assert str(QuotaExceeded()) == ""
    assert not QuotaExceeded().per_device
    assert QuotaExceeded(per_device=True).per_device
