"""StationRandom: the per-station generator behind reconnect backoff and the drivers'
sessions. A seed repeats the same draws; the draws cover their ranges evenly."""

from __future__ import annotations

import statistics

import pytest

from fleet.model.rng import StationRandom


def test_a_seed_repeats_its_draws_and_another_seed_does_not() -> None:
    def draws(seed: int) -> list[object]:
        r = StationRandom(seed)
        return [
            r.random(),
            r.uniform(2.0, 3.0),
            r.getrandbits(64),
            r.choice("abcdef"),
            r.choices([1, 2, 3], weights=[1, 0, 1], k=4),
            r.sample(range(100), 5),
            r.randrange(10, 20),
            r.expovariate(2.0),
            r.lognormvariate(0.0, 1.0),
        ]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)
    # Seeds beyond 64 bits count in full.
    assert StationRandom(1 << 70).random() != StationRandom(0).random()


def test_draws_stay_in_range_and_are_spread() -> None:
    r = StationRandom(1)
    xs = [r.random() for _ in range(20_000)]
    assert min(xs) >= 0.0 and max(xs) < 1.0
    assert statistics.mean(xs) == pytest.approx(0.5, abs=0.01)
    assert {r.randrange(6) for _ in range(500)} == set(range(6))
    assert all(r.getrandbits(k).bit_length() <= k for k in (0, 1, 5, 63, 64, 65, 130))
    assert max(r.getrandbits(130) for _ in range(50)).bit_length() > 120
    assert all(2.0 <= r.uniform(2.0, 3.0) <= 3.0 for _ in range(100))
    # A zero weight is never chosen.
    assert 2 not in r.choices([1, 2, 3], weights=[1, 0, 1], k=200)
    with pytest.raises(ValueError):
        r.getrandbits(-1)


def test_unseeded_generators_differ() -> None:
    assert StationRandom().getrandbits(64) != StationRandom().getrandbits(64)
