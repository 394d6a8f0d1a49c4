"""The virtual-time loop: its clock jumps to the next live timer."""

from __future__ import annotations

import asyncio
import threading

from sdm_emulator.virtual_time import run_virtual


def test_a_cancelled_timer_does_not_hold_the_clock() -> None:
    """A cancelled timer at the head of the loop's heap is skipped: the clock jumps to the next
    live timer at once instead of the loop waiting for it in real time."""

    async def main() -> float:
        loop = asyncio.get_running_loop()
        loop.call_later(10, lambda: None).cancel()  # the head of the heap while we sleep
        await asyncio.sleep(900)
        return loop.time()

    result: list[float] = []
    runner = threading.Thread(target=lambda: result.append(run_virtual(main())), daemon=True)
    runner.start()
    runner.join(60)  # a real wait would take 900 s
    assert result == [900.0]
