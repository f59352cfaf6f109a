"""What a failed connection attempt says (issue 17, item 6): the HTTP status and its
reason phrase, the socket error, or what timed out; never ``: None``. Each kind of
failure is a real server (or the lack of one) on 127.0.0.1; the text is the warning
the station logs at its first failed attempt and the ``--csms`` check's one line."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from support import until

from fleet.cli.options import UsageProblem
from fleet.cli.prerun import check_csms_url
from fleet.csms.server import ReferenceCsms
from fleet.engine.fleet import Fleet
from fleet.model.config import ConfigStore
from fleet.model.station import Station


@contextmanager
def blackhole(backlog_filled: bool = False) -> Iterator[int]:
    """A listening socket on 127.0.0.1 that never accepts nor answers: the kernel
    completes the TCP handshake, nothing ever replies. With ``backlog_filled``, its
    accept queue is full as well, so new TCP handshakes get no answer either."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    if backlog_filled:
        for _ in range(2):  # Linux queues backlog + 1 connections
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
    try:
        yield port
    finally:
        for sock in [*fillers, listener]:
            sock.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A web server, not a websocket one: a page for any request."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi")
    await writer.drain()
    writer.close()


def first_failure(caplog: pytest.LogCaptureFixture, kind: str) -> str:
    """The warning one station logs when its first attempt against ``kind`` fails."""

    async def scenario() -> str:
        loop = asyncio.get_running_loop()
        servers: list[asyncio.AbstractServer] = []
        csms = None
        with blackhole() as hole:
            if kind == "refused":
                url = f"ws://127.0.0.1:{closed_port()}/ocpp"
            elif kind == "401":
                csms = ReferenceCsms(basic_auth={"OTHER": "x" * 16})
                await csms.start()
                url = csms.url
            elif kind == "plain http":
                servers.append(await asyncio.start_server(_plain_http, "127.0.0.1", 0))
                url = f"ws://127.0.0.1:{servers[0].sockets[0].getsockname()[1]}/ocpp"
            else:
                url = f"ws://127.0.0.1:{hole}/ocpp"
            fleet = Fleet(loop, seed=1)
            config = ConfigStore({"WebsocketConnectionTimeout": 3})
            with caplog.at_level(logging.WARNING, logger="fleet"):
                fleet.add(Station("CPFAIL", fleet.now(), config=config), url)
                await until(
                    lambda: any("cannot connect" in r.getMessage() for r in caplog.records),
                    timeout=10.0,
                    what=f"the {kind} failure",
                )
            fleet.stop_all()
        for server in servers:
            server.close()
        if csms is not None:
            await csms.stop()
        return next(r.getMessage() for r in caplog.records if "cannot connect" in r.getMessage())

    return asyncio.run(scenario())


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("refused", "(refused: Connection refused)"),
        ("401", "(HTTP 401 Unauthorized)"),
        ("plain http", "(HTTP 200 OK)"),
        ("blackhole", "(timeout: no websocket handshake within 3 s)"),
    ],
)
def test_a_failed_attempt_names_its_cause(
    caplog: pytest.LogCaptureFixture, kind: str, text: str
) -> None:
    message = first_failure(caplog, kind)
    assert message.startswith("CPFAIL: cannot connect to ws://127.0.0.1:"), message
    assert message.endswith(text), message
    assert "None" not in message


def test_csms_check_names_the_socket_error() -> None:
    port = closed_port()
    with pytest.raises(UsageProblem) as refused:
        check_csms_url(f"ws://127.0.0.1:{port}/ocpp")
    assert (
        str(refused.value.message) == f"--csms: cannot reach 127.0.0.1:{port} (Connection refused)"
    )
    with blackhole(backlog_filled=True) as hole, pytest.raises(UsageProblem) as hung:
        check_csms_url(f"ws://127.0.0.1:{hole}/ocpp", timeout=0.5)
    assert (
        str(hung.value.message) == f"--csms: cannot reach 127.0.0.1:{hole} (no answer within 0.5 s)"
    )
