"""The outbox (fleet.model.outbox) through its own API, without a station.

A fake clock is just the ``now`` passed in. ``deliver`` plays the station's part: take
what is due, mark it sent, and report the CSMS's answer.
"""

from __future__ import annotations

from fleet.model.outbox import Outbox, Outgoing
from fleet.model.records import Transaction

T0 = 1_700_000_000.0
ATTEMPTS, INTERVAL = 2, 15


def make() -> tuple[Outbox, list[str]]:
    dropped: list[str] = []
    return Outbox(dropped.append), dropped


def tx_messages(tx: Transaction) -> list[Outgoing]:
    return [
        Outgoing("StartTransaction", {"idTag": tx.id_tag}, tx),
        Outgoing("MeterValues", {"connectorId": 1, "transactionId": 0, "meterValue": []}, tx),
        Outgoing("StopTransaction", {"transactionId": 0, "meterStop": 5}, tx),
    ]


def send(box: Outbox, now: float) -> Outgoing | None:
    msg = box.pop_ready(now)
    if msg is not None:
        box.sending(msg)
    return msg


def answer(box: Outbox, outcome: str, now: float) -> Outgoing:
    """``ok``, ``callerror`` or ``timeout`` for the message in flight."""
    msg = box.take_inflight()
    if outcome == "ok":
        box.answered(msg)
        if msg.action == "StartTransaction" and msg.transaction is not None:
            msg.transaction.transaction_id = 42
    else:
        box.failed(msg, outcome == "timeout", now, ATTEMPTS, INTERVAL)
    return msg


def session(box: Outbox, online: bool = True) -> Transaction:
    tx = Transaction(1, 1, "TAG1", 0, T0)
    for msg in tx_messages(tx):
        box.append_transaction(msg, online)
    return tx


def test_messages_go_in_order_with_the_csms_transaction_id_filled_in() -> None:
    box, dropped = make()
    session(box)
    box.append(Outgoing("Heartbeat", {}))
    sent = []
    while (msg := send(box, T0)) is not None:
        sent.append((msg.action, msg.payload.get("transactionId")))
        answer(box, "ok", T0)
    assert sent == [
        ("StartTransaction", None),
        ("MeterValues", 42),
        ("StopTransaction", 42),
        ("Heartbeat", None),
    ]
    assert dropped == [] and box.backlog == 0 and box.transaction_resends == 0


def test_a_timeout_keeps_the_message_first_uncounted_and_retries_after_the_interval() -> None:
    box, dropped = make()
    session(box)
    for i in range(5):  # far more than TransactionMessageAttempts
        now = T0 + i * INTERVAL
        msg = send(box, now)
        assert msg is not None and msg.action == "StartTransaction"
        answer(box, "timeout", now)
        assert box.next_due() == now + INTERVAL
        assert send(box, now + INTERVAL - 0.1) is None  # nothing overtakes it
    assert dropped == [] and box.backlog == 3
    assert box.transaction_resends == 4


def test_after_a_timeout_the_next_link_sends_the_message_at_once() -> None:
    box, _ = make()
    session(box)
    send(box, T0)
    answer(box, "timeout", T0)
    box.link_down()
    box.link_up()
    msg = send(box, T0 + 1)  # long before the retry interval
    assert msg is not None and msg.action == "StartTransaction" and msg.offline


def test_only_callerrors_count_towards_the_attempts() -> None:
    box, dropped = make()
    session(box)
    outcomes = ["timeout", "callerror", "timeout", "timeout", "callerror"]
    now = T0
    for outcome in outcomes:
        msg = send(box, now)
        assert msg is not None and msg.action == "StartTransaction"
        answer(box, outcome, now)
        now += INTERVAL * ATTEMPTS
    # The second CALLERROR was the last attempt: the Start is given up on, and what
    # cannot name its transaction goes with it, each counted.
    assert send(box, now) is None
    assert dropped == ["StartTransaction", "MeterValues", "StopTransaction"]
    assert box.dropped == 3 and box.backlog == 0


def test_a_callerror_is_retried_after_the_interval_times_the_failures() -> None:
    box, dropped = make()
    session(box)
    send(box, T0)
    answer(box, "callerror", T0)
    assert box.next_due() == T0 + INTERVAL
    assert dropped == []


def test_a_message_of_a_transaction_without_an_id_waits_for_it() -> None:
    box, dropped = make()
    tx = Transaction(1, 1, "TAG1", 0, T0)
    mv = tx_messages(tx)[1]
    box.append_transaction(mv, True)  # its StartTransaction is elsewhere (unanswered)
    assert send(box, T0 + 100) is None and dropped == []
    tx.transaction_id = 7
    msg = send(box, T0 + 100)
    assert msg is mv and msg.payload["transactionId"] == 7


def test_a_triggered_snapshot_without_an_id_names_no_transaction() -> None:
    box, _ = make()
    tx = Transaction(1, 1, "TAG1", 0, T0)
    box.append(Outgoing("MeterValues", {"connectorId": 1, "transactionId": 0}, tx, triggered=True))
    msg = send(box, T0)
    assert msg is not None and "transactionId" not in msg.payload
    answer(box, "timeout", T0)  # not transaction-related: not retried by the outbox
    assert box.backlog == 0


def test_a_lost_link_keeps_transaction_messages_and_security_events_only() -> None:
    box, _ = make()
    box.append(Outgoing("StatusNotification", {"connectorId": 1}))
    session(box)
    box.append(Outgoing("SecurityEventNotification", {"type": "x"}))
    send(box, T0)  # the StatusNotification is in flight
    pending = box.link_down()
    assert pending[0].action == "StatusNotification"
    kept = [m.action for m in box]
    assert kept == [
        "StartTransaction",
        "MeterValues",
        "StopTransaction",
        "SecurityEventNotification",
    ]
    assert all(m.offline for m in box)
    while send(box, T0 + 1) is not None:
        answer(box, "ok", T0 + 1)
    assert box.offline_delivered == 3  # transaction messages only


def test_a_reboot_puts_the_transaction_message_in_flight_back_first() -> None:
    box, _ = make()
    session(box)
    box.append(Outgoing("Heartbeat", {}))
    send(box, T0)
    box.reboot()
    assert box.inflight is None
    assert [m.action for m in box] == ["StartTransaction", "MeterValues", "StopTransaction"]


def test_at_the_limit_the_oldest_periodic_sample_makes_room_and_is_counted() -> None:
    box, dropped = make()
    box.limit = 3
    tx = session(box, online=False)  # Start, MeterValues, Stop: full
    newer = Outgoing("MeterValues", {"connectorId": 1, "transactionId": 0}, tx)
    box.append_transaction(newer, False)
    assert dropped == ["MeterValues"]
    assert [m.action for m in box] == ["StartTransaction", "StopTransaction", "MeterValues"]
    box.append_transaction(Outgoing("StopTransaction", {}, tx), False)
    assert dropped == ["MeterValues", "MeterValues"] and len(box) == 3
    assert box.transaction_messages_queued == 5
