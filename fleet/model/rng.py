"""A seeded random number generator small enough for every station to have its own.

Each station draws from its own generator (reconnect backoff, its drivers' arrivals,
badges and EVs), seeded from the fleet's, so a seeded run repeats station by station
whatever order the network delivers events in. ``random.Random`` keeps the Mersenne
Twister's 2.5 KB of state inline in every instance (~2.9 KB with its ``__dict__``): two or
three per station were a quarter of a station's memory (issue 16). This one keeps 64
bits (SplitMix64, Steele, Lea & Flood 2014: statistically sound for a simulator's
draws) and borrows the rest of ``random.Random``'s interface, whose
methods only call :meth:`random` and :meth:`getrandbits`. Draws are rare (a few per
session or reconnect), so a Python step costing ~0.3 us instead of C's ~0.03 is nothing.
"""

from __future__ import annotations

import os
import random
from collections.abc import MutableSequence, Sequence
from typing import Any, TypeVar

__all__ = ["Rng", "StationRandom"]

T = TypeVar("T")

_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_TO_UNIT = 1.0 / (1 << 53)
_STDLIB: Any = random.Random
"""The derived methods (uniform, choice, choices, ...) are plain Python functions of
``random.Random`` that call only ``self.random()``, ``self.getrandbits()``,
``self._randbelow()`` and ``self.gauss_next``: this class provides those."""


class StationRandom:
    """``random.Random``'s drawing interface over 64 bits of state; one per station."""

    __slots__ = ("_state", "gauss_next")

    def __init__(self, seed: int | None = None) -> None:
        self._state = 0
        self.gauss_next: float | None = None
        self.seed(seed)

    def seed(self, seed: int | None = None) -> None:
        """``None``: from the OS; an int (any size) folds into the 64-bit state."""
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little")
        state = 0
        seed = abs(seed)
        while True:
            state ^= seed & _M64
            seed >>= 64
            if not seed:
                break
            state = _mix(state)
        self._state = state
        self.gauss_next = None

    def _next(self) -> int:
        self._state = state = (self._state + _GOLDEN) & _M64
        return _mix(state)

    def random(self) -> float:
        """A float in [0, 1), 53 random bits."""
        return (self._next() >> 11) * _TO_UNIT

    def getrandbits(self, k: int) -> int:
        """An int of ``k`` random bits."""
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        if k <= 64:
            return self._next() >> (64 - k)
        value, bits = 0, 0
        while bits < k:
            value = (value << 64) | self._next()
            bits += 64
        return value >> (bits - k)

    def _randbelow(self, n: int) -> int:
        return int(_STDLIB._randbelow_with_getrandbits(self, n))

    # -- random.Random's derived methods ------------------------------------------------

    def uniform(self, a: float, b: float) -> float:
        return float(_STDLIB.uniform(self, a, b))

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        return int(_STDLIB.randrange(self, start, stop, step))

    def randint(self, a: int, b: int) -> int:
        return int(_STDLIB.randint(self, a, b))

    def choice(self, seq: Sequence[T]) -> T:
        item: T = _STDLIB.choice(self, seq)
        return item

    def choices(
        self,
        population: Sequence[T],
        weights: Sequence[float] | None = None,
        *,
        cum_weights: Sequence[float] | None = None,
        k: int = 1,
    ) -> list[T]:
        items: list[T] = _STDLIB.choices(self, population, weights, cum_weights=cum_weights, k=k)
        return items

    def sample(self, population: Sequence[T], k: int) -> list[T]:
        items: list[T] = _STDLIB.sample(self, population, k)
        return items

    def shuffle(self, x: MutableSequence[Any]) -> None:
        _STDLIB.shuffle(self, x)

    def expovariate(self, lambd: float = 1.0) -> float:
        return float(_STDLIB.expovariate(self, lambd))

    def normalvariate(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        return float(_STDLIB.normalvariate(self, mu, sigma))

    def lognormvariate(self, mu: float, sigma: float) -> float:
        return float(_STDLIB.lognormvariate(self, mu, sigma))

    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        return float(_STDLIB.gauss(self, mu, sigma))

    def triangular(self, low: float = 0.0, high: float = 1.0, mode: float | None = None) -> float:
        return float(_STDLIB.triangular(self, low, high, mode))


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


Rng = random.Random | StationRandom
"""What code that draws for one station accepts: the fleet-wide generators stay
``random.Random``, the per-station ones are :class:`StationRandom`."""
