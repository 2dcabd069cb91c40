"""Bounded solving: `slots` solves run at once in a thread pool, at most `queue_depth` more wait
for a slot, and anything beyond is refused at once (the route answers 429 with Retry-After).
Nothing waits without bound, so a burst cannot pile up memory or latency.

Threads, not processes: CP-SAT releases the GIL while it searches, and the window's objects
need no pickling. A solve whose client went away still runs to its time limit and holds its
slot meanwhile: CP-SAT cannot be interrupted from outside safely, and the slot count must stay
true to the CPU actually in use.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Busy(Exception):
    """Every slot and queue place is taken."""


class SolvePool:
    def __init__(self, slots: int, queue_depth: int) -> None:
        self.slots = slots
        self.capacity = slots + queue_depth
        self._executor = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="solve")
        self._lock = threading.Lock()
        self.admitted = 0  # running + waiting
        self.running = 0

    def try_admit(self) -> None:
        """Take a place or raise Busy; pair with `release` (use `run`, which does both)."""
        with self._lock:
            if self.admitted >= self.capacity:
                raise Busy
            self.admitted += 1

    def release(self) -> None:
        with self._lock:
            self.admitted -= 1

    async def run(self, fn: Callable[[], T]) -> T:
        """Run `fn` in a slot; raises Busy at once when every slot and queue place is taken."""
        self.try_admit()

        def work() -> T:
            with self._lock:
                self.running += 1
            try:
                return fn()
            finally:
                with self._lock:
                    self.running -= 1

        try:
            future = self._executor.submit(work)
        except RuntimeError:  # shut down
            self.release()
            raise
        # released when the work is done or cancelled before it started, not when the awaiting
        # request is cancelled: a running solve keeps its place until it really ends
        future.add_done_callback(lambda _f: self.release())
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
