"""Run by test_locust_batch.py in a subprocess (importing Locust monkey-patches the
process): one deterministic stream of exchanges through Locust's per-request event and
through fleet.locust.batch; prints both sets of Locust's figures as JSON."""

from __future__ import annotations

import json
import random
import sys

from locust.env import Environment
from locust.event import Events

from fleet.locust import batch
from fleet.locust.bridge import CONNECT_TYPE, REQUEST_TYPE, ConnectFailure, OcppFailure

ACTIONS = ["MeterValues", "Heartbeat", "StatusNotification", "StartTransaction", "connect"]
ERRORS = [None] * 12 + ["CALLERROR InternalError", "timeout", "connection lost"]
PERCENTILES = [0.0, 0.1, 0.5, 0.66, 0.9, 0.95, 0.99, 0.999, 1.0]


def method(action: str) -> str:
    return CONNECT_TYPE if action == "connect" else REQUEST_TYPE


def stream(seed: int, n: int) -> list[tuple[str, float, int, str | None]]:
    """Round trips from 0.1 ms to 30 s (every rounding band of Locust's histogram)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        seconds = 10 ** rng.uniform(-4, 1.5)
        out.append((rng.choice(ACTIONS), seconds, rng.randrange(0, 900), rng.choice(ERRORS)))
    return out


def environment() -> Environment:
    env = Environment(events=Events())
    env.create_local_runner()  # registers Locust's statistics listener
    return env


def exceptions() -> dict[str, Exception]:
    return {}


def exception_of(cache: dict[str, Exception], action: str, error: str) -> Exception:
    if error not in cache:
        cache[error] = (ConnectFailure if action == "connect" else OcppFailure)(error)
    return cache[error]


def per_sample(samples: list[tuple[str, float, int, str | None]]) -> Environment:
    env, cache = environment(), exceptions()
    for action, seconds, size, error in samples:
        env.events.request.fire(
            request_type=method(action),
            name=action,
            response_time=seconds * 1000.0,
            response_length=size,
            exception=None if error is None else exception_of(cache, action, error),
            context={},
        )
    return env


def batched(samples: list[tuple[str, float, int, str | None]], every: int) -> Environment:
    env, cache = environment(), exceptions()
    assert batch.only_locust_stats(env.events.request._handlers)
    batcher = batch.Batcher()
    for i, sample in enumerate(samples, 1):
        batcher.add(*sample)
        if i % every == 0:
            batcher.hand_over()
    batcher.hand_over()
    while batcher.ready:
        item = batcher.ready.popleft()
        assert item is not None and len(item) == 2
        when, one = item
        batch.merge(env.stats, when, one, method, lambda a, e: exception_of(cache, a, e))
    return env


def figures(env: Environment) -> dict[str, object]:
    stats = env.stats
    out: dict[str, object] = {}
    for key, entry in [(("total",), stats.total), *sorted(stats.entries.items())]:
        out["/".join(key)] = {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "min": entry.min_response_time,
            "max": entry.max_response_time,
            "median": entry.median_response_time,
            "percentiles": [entry.get_response_time_percentile(p) for p in PERCENTILES],
            "histogram": dict(entry.response_times),
            "bytes": entry.total_content_length,
            "avg": entry.avg_response_time,
            "avg_size": entry.avg_content_length,
        }
    out["errors"] = sorted(
        (e.method, e.name, e.to_name(), e.occurrences) for e in stats.errors.values()
    )
    return out


def main() -> None:
    what, every = sys.argv[1], int(sys.argv[2])
    if what == "listener":
        print(json.dumps(listener()))
        return
    samples = stream(seed=16, n=5000)
    print(
        json.dumps(
            {"expected": figures(per_sample(samples)), "got": figures(batched(samples, every))}
        )
    )


def listener() -> dict[str, object]:
    """A user's own request listener: the batcher hands over samples one by one."""
    env = environment()
    env.events.request.add_listener(lambda name, **_: None)
    batcher = batch.Batcher()
    batcher.raw = True
    for sample in stream(seed=1, n=20):
        batcher.add(*sample)
    batcher.hand_over()
    return {
        "only_locust_stats": batch.only_locust_stats(env.events.request._handlers),
        "handed": [item[0] for item in batcher.ready if item is not None],
        "stream": [s[0] for s in stream(seed=1, n=20)],
    }


if __name__ == "__main__":
    main()
