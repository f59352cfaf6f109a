"""The station-number allocator of a distributed run (see fleet.locust.distributed).

Kept free of Locust and gevent so it can be used and tested in any process: importing
Locust monkey-patches the importing process.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable


class NumberPool:
    """Station numbers 1..N, the lowest free first, with holder affinity.

    ``holder`` is whoever runs the station (a Locust worker's client id). A free
    number is filed under the holder that last had it; :meth:`take` prefers the
    holder's own, then numbers nobody holds any claim on, then other holders' (the
    ``stolen`` result says whose), and only then a number never used: the numbers in
    use never grow past the peak number of stations.
    """

    def __init__(self) -> None:
        self._top = 0  # the highest number ever handed out
        self._free: dict[str | None, list[int]] = {None: []}  # holder -> heap
        self._held: dict[str, set[int]] = {}

    @property
    def top(self) -> int:
        return self._top

    def in_use(self, holder: str | None = None) -> int:
        if holder is None:
            return sum(len(numbers) for numbers in self._held.values())
        return len(self._held.get(holder, ()))

    def take(self, holder: str, count: int) -> tuple[list[int], dict[str, list[int]]]:
        """``count`` numbers for ``holder``; and, per other holder, the numbers of its
        parked stations that were given away."""
        got: list[int] = []
        stolen: dict[str, list[int]] = {}
        for source in (holder, None):
            heap = self._free.get(source)
            while heap and len(got) < count:
                got.append(heapq.heappop(heap))
        while len(got) < count:
            others = [(heap[0], h) for h, heap in self._free.items() if heap and h is not None]
            if not others:
                break
            _, other = min(others)
            number = heapq.heappop(self._free[other])
            got.append(number)
            stolen.setdefault(other, []).append(number)
        while len(got) < count:
            self._top += 1
            got.append(self._top)
        self._held.setdefault(holder, set()).update(got)
        return got, stolen

    def release(self, holder: str, numbers: Iterable[int]) -> None:
        """``holder`` stopped these stations; their numbers are free (filed under it)."""
        held = self._held.get(holder, set())
        heap = self._free.setdefault(holder, [])
        for number in numbers:
            if number in held:
                held.discard(number)
                heapq.heappush(heap, number)

    def drop_holder(self, holder: str) -> None:
        """``holder`` is gone: everything it held or parked is free for anyone."""
        numbers = list(self._held.pop(holder, ())) + self._free.pop(holder, [])
        common = self._free[None]
        for number in numbers:
            heapq.heappush(common, number)

    def holders(self) -> list[str]:
        return [h for h in itertools.chain(self._held, self._free) if h is not None]
