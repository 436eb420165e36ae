"""FifoGate: arrival order, per-waiter deadlines served by one timer, cancellation never loses a place."""

from __future__ import annotations

import asyncio

import pytest

from madbase.core.fifogate import FifoGate


async def test_places_go_in_arrival_order() -> None:
    gate = FifoGate(2)
    order: list[int] = []

    async def user(i: int) -> None:
        await gate.enter(5.0)
        try:
            order.append(i)
            await asyncio.sleep(0.005)
        finally:
            gate.leave()

    await asyncio.gather(*(user(i) for i in range(10)))
    assert order == list(range(10))
    assert gate.free == 2 and not gate.locked()


async def test_each_waiter_times_out_at_its_own_deadline() -> None:
    gate = FifoGate(1)
    await gate.enter(1.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    ended: dict[str, float] = {}

    async def waiter(name: str, wait: float) -> None:
        try:
            await gate.enter(wait)
        except TimeoutError:
            ended[name] = loop.time() - started
            return
        ended[name] = -1.0  # got the place
        gate.leave()

    long = asyncio.create_task(waiter("long", 0.5))
    await asyncio.sleep(0)
    short = asyncio.create_task(waiter("short", 0.1))  # later arrival, earlier deadline
    await asyncio.wait_for(short, 2)
    assert 0.09 <= ended["short"] < 0.4 and "long" not in ended
    await asyncio.wait_for(long, 2)
    assert 0.45 <= ended["long"] < 0.9
    gate.leave()
    assert gate.free == 1
    await gate.enter(0.1)  # nothing left behind in the queue
    gate.leave()


async def test_a_cancelled_waiter_passes_its_place_on() -> None:
    gate = FifoGate(1)
    await gate.enter(1.0)
    first = asyncio.create_task(gate.enter(5.0))
    second = asyncio.create_task(gate.enter(5.0))
    await asyncio.sleep(0)
    gate.leave()  # handed to `first`...
    first.cancel()  # ...which is cancelled before it runs: the place must reach `second`
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)
    gate.leave()
    assert gate.free == 1
    third = asyncio.create_task(gate.enter(5.0))
    await asyncio.wait_for(third, 1)
    waiting = asyncio.create_task(gate.enter(5.0))
    await asyncio.sleep(0)
    waiting.cancel()  # cancelled while waiting: the next leave() frees the place
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gate.leave()
    assert gate.free == 1
