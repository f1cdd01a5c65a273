"""One memory budget for the process: the large buffers requests hold (upload part
buffers, Bytes contents inlined in JSON views) are taken from it, and a request that
would go past it waits instead of allocating.

Waiters are served strictly in arrival order, so a large request is never starved by
small ones that keep arriving; nobody jumps the queue, not even try_acquire. A waiter
that is cancelled (or times out) leaves the queue and gives back what it may already
have been granted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
from collections.abc import AsyncIterator

from service.errors import Unavailable


class MemoryBusy(Unavailable):
    """The budget had no room for a request within its wait (503: try again, elsewhere)."""


@dataclasses.dataclass
class _Waiter:
    amount: int
    future: asyncio.Future[None]


class MemoryBudget:
    """capacity bytes, handed out in amounts of at most capacity."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a memory budget needs at least 1 byte")
        self.capacity = capacity
        self.available = capacity
        self._waiters: collections.deque[_Waiter] = collections.deque()

    @property
    def in_use(self) -> int:
        return self.capacity - self.available

    @property
    def waiting(self) -> int:
        """How many acquire() calls are queued."""
        return len(self._waiters)

    def try_acquire(self, amount: int) -> bool:
        """Take amount now if it is free and nobody is waiting; never waits."""
        self._check(amount)
        if self._waiters or amount > self.available:
            return False
        self.available -= amount
        return True

    async def acquire(self, amount: int, *, timeout: float | None = None) -> None:
        """Take amount, waiting behind earlier waiters until it is free; MemoryBusy
        after timeout seconds (None: wait as long as it takes)."""
        if self.try_acquire(amount):
            return
        waiter = _Waiter(amount, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter.future
        except BaseException as error:
            if waiter.future.done() and not waiter.future.cancelled():
                self.release(amount)  # granted just as the wait ended: give it back
            else:
                waiter.future.cancel()
                self._waiters.remove(waiter)
                self._wake()  # the head may have left: those behind it may fit now
            if isinstance(error, TimeoutError):
                raise MemoryBusy(
                    "The service has no memory free for this request now; try again"
                ) from None
            raise

    def release(self, amount: int) -> None:
        self.available += amount
        if self.available > self.capacity:
            raise RuntimeError("memory budget released more than was taken")
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._waiters[0].amount <= self.available:
            waiter = self._waiters.popleft()
            self.available -= waiter.amount
            waiter.future.set_result(None)

    def _check(self, amount: int) -> None:
        if not 0 < amount <= self.capacity:
            raise ValueError(f"cannot take {amount} bytes of a budget of {self.capacity}")

    @contextlib.asynccontextmanager
    async def reserved(self, amount: int, *, timeout: float | None = None) -> AsyncIterator[Hold]:
        """amount taken for the block; the Hold may shrink it, the rest is given back
        on the way out whatever happens."""
        await self.acquire(amount, timeout=timeout)
        hold = Hold(self, amount)
        try:
            yield hold
        finally:
            hold.release()


class Hold:
    """An amount taken from a budget, to be given back (in part with shrink)."""

    def __init__(self, budget: MemoryBudget, amount: int) -> None:
        self._budget = budget
        self.amount = amount

    def shrink(self, to: int) -> None:
        """Keep only `to` bytes (the buffer that needed more is gone)."""
        if to < self.amount:
            self._budget.release(self.amount - to)
            self.amount = to

    def release(self) -> None:
        if self.amount:
            self._budget.release(self.amount)
            self.amount = 0
