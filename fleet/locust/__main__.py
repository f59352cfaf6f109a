"""``python -m fleet.locust``: Locust's command line, as ``fleet run`` and ``fleet
capacity`` start it.

A signal that arrives while Python is still importing Locust (Ctrl-C a moment after the
run started) would end the child with a KeyboardInterrupt traceback from deep inside an
import. Until Locust is up (its ``init`` event: :func:`fleet.locust.process.setup`),
SIGINT and SIGTERM end this process quietly with 128 + the signal; from then on Locust's
own handling (reports written, workers told to quit) takes over.
"""

import signal
import sys
from types import FrameType


def _quiet(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


signal.signal(signal.SIGINT, _quiet)
signal.signal(signal.SIGTERM, _quiet)

from locust.main import main  # noqa: E402  (after the handlers: importing takes seconds)

sys.exit(main())
