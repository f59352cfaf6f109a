"""The Locust child process itself, set up once per process (master and each worker) at
``init``: how it logs from two kinds of threads, and how it stops.

Locust monkey-patches ``threading`` before logging is set up, so every logging lock is
a gevent lock, while the fleet's event loop runs in a native thread that logs too
(``fleet.link``; ``websockets`` at ``--loglevel DEBUG``). A gevent lock contended by two
native threads can deadlock (a ``-- --loglevel DEBUG`` run hung at its end). Emitting a
record never yields to gevent, so native locks are safe on both sides.

``fleet run`` stops the child with SIGINT (Locust's Ctrl-C path: the HTML report is
written, the workers are told to quit). The KeyboardInterrupt still ends the run;
gevent's hub only stops printing it as if it were an error.

A Locust 2.47 worker handling a ``spawn`` message filters the master's options with
``argument_parser.default_args_dict()`` once per option, and each call builds Locust's
whole argument parser: ~0.1 s of the hub per message. During a fast ramp the master
sends one every few hundred milliseconds and the worker's hub spent most of its time
there (issue 16, the 100,000-station ramp). The defaults do not change within a
process: computed once.
"""

from __future__ import annotations

import functools
import logging
import signal
import time

import gevent
import locust.stats
from gevent import monkey
from locust import argument_parser


def setup() -> None:
    # Locust is up: Ctrl-C is its KeyboardInterrupt again (see fleet/locust/__main__.py),
    # SIGTERM its own handler (installed after init) or, until then, the default.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    native_logging_locks()
    if not hasattr(argument_parser.default_args_dict, "cache_info"):
        argument_parser.default_args_dict = functools.cache(argument_parser.default_args_dict)
    hub = gevent.get_hub()
    if KeyboardInterrupt not in hub.NOT_ERROR:
        hub.NOT_ERROR = (*hub.NOT_ERROR, KeyboardInterrupt)


def native_logging_locks() -> None:
    """Replace the locks of logging's module and of every handler by native ones."""
    rlock = monkey.get_original("_thread", "RLock")
    logging._lock = rlock()  # type: ignore[attr-defined]
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            handler.lock = rlock()


class FinalWriteCSV(locust.stats.StatsCSVFileWriter):
    """Locust's CSV writer, with a last write of every file before they close."""

    def close_files(self) -> None:
        try:
            self.write_now()
        finally:
            super().close_files()

    def write_now(self) -> None:
        """The files as Locust's writer would write them now (headers, then rows; the
        history file gets one more row)."""
        for handle, writer, columns, rows in (
            (
                self.requests_csv_filehandle,
                self.requests_csv_writer,
                self.requests_csv_columns,
                self._requests_data_rows,
            ),
            (
                self.failures_csv_filehandle,
                self.failures_csv_writer,
                self.failures_columns,
                self._failures_data_rows,
            ),
            (
                self.exceptions_csv_filehandle,
                self.exceptions_csv_writer,
                self.exceptions_columns,
                self._exceptions_data_rows,
            ),
        ):
            handle.seek(0)
            writer.writerow(columns)
            rows(writer)
            handle.truncate()
        self._stats_history_data_rows(self.stats_history_csv_writer, time.time())


locust.stats.StatsCSVFileWriter = FinalWriteCSV  # type: ignore[misc]
