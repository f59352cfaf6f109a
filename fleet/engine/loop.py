"""The asyncio (uvloop) event loop that carries every station of a process.

Locust monkey-patches the process for gevent, where ``threading.Thread`` is a
greenlet. The loop must run in a *real* OS thread, or it would share the gevent hub
and starve Locust's heartbeats to the master; ``gevent.monkey.get_original`` gives
the unpatched thread starter. Without gevent (the CLI, the tests) the standard
``threading`` module is already the real one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any


def start_real_thread(target: Callable[[], None], name: str) -> None:
    """A real OS thread even when gevent has patched ``threading`` (see above); ``name``
    is its name where it can have one (an unpatched process)."""
    try:
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            start = monkey.get_original("_thread", "start_new_thread")
            start(target, ())
            return
    except ImportError:  # pragma: no cover - gevent comes with locust
        pass
    threading.Thread(target=target, name=name, daemon=True).start()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where available: about half the per-message cost of the default loop."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop does not exist on Windows
        return asyncio.new_event_loop()


class LoopThread:
    """One event loop in one real OS thread; start it after Locust has forked.

    Nothing here waits on the loop thread: under gevent, ``threading.Event`` and
    ``concurrent.futures.Future`` are gevent objects, which must not be touched from
    another OS thread. Work goes in with ``call`` (fire and forget); results come
    back through thread-safe deques that a greenlet drains.
    """

    def __init__(self) -> None:
        self.loop = new_event_loop()
        self.started = False

    def start(self) -> LoopThread:
        # call_soon_threadsafe queues work even before run_forever starts, so
        # there is no need to wait for the thread to be up.
        start_real_thread(self._run, "fleet-loop")
        self.started = True
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, fn: Any, *args: Any) -> None:
        """Call fn(*args) on the loop thread, soon, from any thread."""
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        """Ask the loop to stop after the callbacks already queued."""
        self.loop.call_soon_threadsafe(self.loop.stop)
