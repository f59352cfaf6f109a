"""The offline queue of transaction messages, on a fake clock (issue 5).

A station that loses the CSMS keeps charging, samples at
disconnectedMeterValueSampleInterval, queues StartTransaction / MeterValues /
StopTransaction in order, and on reconnect delivers the queue in order before anything
new, retrying per TransactionMessageAttempts / TransactionMessageRetryInterval. The
queue survives a Reset, has a limit, and every drop is counted.
"""

from __future__ import annotations

from typing import Any

from test_station import T0, Csms, Recorder, energy_of, epoch, make

from fleet.model.station import Station

OFFLINE = {"disconnectedMeterValueSampleInterval": 60, "MeterValueSampleInterval": 10}
TX_ACTIONS = ("StartTransaction", "MeterValues", "StopTransaction")


def tx_log(c: Csms, since: float = float("-inf")) -> list[tuple[str, dict[str, Any]]]:
    return [(s.action, s.payload) for s in c.log if s.at >= since and s.action in TX_ACTIONS]


def offline_session(st: Station, c: Csms, start: float, stop: float) -> None:
    """A whole session while offline: plug, badge (started locally), unplug."""
    c.run(start)
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG1")
    assert st.status(1) == "Charging"
    c.run(stop)
    c.do(st.unplug)


def test_an_offline_session_is_queued_in_order_and_delivered_before_new_messages() -> None:
    rec = Recorder()
    st, c = make(OFFLINE, observer=rec)
    c.link_down(T0 + 5)
    offline_session(st, c, T0 + 10, T0 + 200)
    assert st.transaction_backlog == 1 + 3 + 1  # Start, samples at +70/+130/+190, Stop
    assert [s.action for s in c.log if s.at > T0 + 5] == []
    c.link_up(T0 + 300)
    c.run(T0 + 310)
    # A new session right after: its messages come after the whole queue.
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG2")
    c.run(T0 + 330)
    log = tx_log(c, since=T0 + 300)
    actions = [a for a, _ in log]
    assert actions[:5] == [
        "StartTransaction",
        "MeterValues",
        "MeterValues",
        "MeterValues",
        "StopTransaction",
    ]
    assert actions[5] == "StartTransaction" and log[5][1]["idTag"] == "TAG2"
    first_id = 1001  # the CSMS's id for the StartTransaction queued offline
    assert all(p["transactionId"] == first_id for _, p in log[1:5])  # mapped at send time
    stamps = [epoch(p["meterValue"][0]["timestamp"]) for _, p in log[1:4]]
    assert stamps == [T0 + 70, T0 + 130, T0 + 190]  # disconnectedMeterValueSampleInterval
    start, stop = log[0][1], log[4][1]
    assert epoch(start["timestamp"]) == T0 + 10 and epoch(stop["timestamp"]) == T0 + 200
    energies = [energy_of(p["meterValue"][0]) for _, p in log[1:4]]
    assert start["meterStart"] <= energies[0] <= energies[1] <= energies[2] <= stop["meterStop"]
    assert rec.of("transaction_stopped")[0][2] == stop["meterStop"] - start["meterStart"]
    assert st.offline_delivered == 5
    assert st.dropped_messages == 0
    # Online again: samples at MeterValueSampleInterval for the new session.
    online = [p for a, p in log[6:] if a == "MeterValues"]
    assert [epoch(p["meterValue"][0]["timestamp"]) for p in online] == [T0 + 320, T0 + 330]


def test_a_start_whose_answer_was_lost_is_sent_again_and_the_new_id_is_used() -> None:
    st, c = make(OFFLINE)
    c.held = {"StartTransaction"}
    c.run(T0 + 10)
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG1")
    assert c.pending is not None and c.pending.action == "StartTransaction"
    c.pending = None  # the CSMS got it; its answer is lost with the link
    c.held = set()
    c.link_down(T0 + 12)
    c.run(T0 + 100)
    c.do(st.unplug)
    c.link_up(T0 + 150)
    log = tx_log(c)
    assert [a for a, _ in log] == [
        "StartTransaction",
        "StartTransaction",
        "MeterValues",
        "StopTransaction",
    ]
    assert log[0][1] == log[1][1]  # the same message: a CSMS can recognise it
    assert st.transaction_resends == 1
    assert log[2][1]["transactionId"] == log[3][1]["transactionId"] == c.next_transaction_id


def test_the_queue_survives_a_hard_reset() -> None:
    st, c = make(OFFLINE)
    c.link_down(T0 + 5)
    c.run(T0 + 10)
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG1")
    c.run(T0 + 100)
    # Back online, and the CSMS resets the station before the queue went out.
    st.connected(c.now)
    answer = st.handle_call("Reset", {"type": "Hard"}, c.now)
    assert answer == {"status": "Accepted"}
    assert st.effects  # the engine reboots it now
    st.effects.clear()
    st.disconnected(c.now)
    c.now = T0 + 130
    st.rebooted(c.now)
    st.connected(c.now)
    c.flush()
    c.run(T0 + 140)
    after = [s.action for s in c.log if s.at >= T0 + 130]
    assert after[0] == "BootNotification"
    assert [a for a in after if a in TX_ACTIONS] == [
        "StartTransaction",
        "MeterValues",
        "StopTransaction",
    ]
    log = tx_log(c)
    assert log[-1][1]["reason"] == "HardReset"
    assert log[-1][1]["transactionId"] == log[1][1]["transactionId"] == c.next_transaction_id
    assert st.transaction_backlog == 0 and st.dropped_messages == 0


def test_at_the_limit_the_oldest_periodic_meter_values_go_and_every_drop_is_counted() -> None:
    rec = Recorder()
    st, c = make({**OFFLINE, "disconnectedMeterValueSampleInterval": 10}, observer=rec)
    st.queue_limit = 4
    c.link_down(T0 + 5)
    offline_session(st, c, T0 + 10, T0 + 105)  # samples at +20 ... +100: 9
    assert st.transaction_backlog == 4  # the StopTransaction made room too
    queued = st.transaction_messages_queued
    assert queued == 1 + 9 + 1
    assert st.dropped_messages == 7
    assert rec.of("message_dropped") == [("MeterValues",)] * 7
    c.link_up(T0 + 200)
    log = tx_log(c)
    assert [a for a, _ in log] == ["StartTransaction"] + ["MeterValues"] * 2 + ["StopTransaction"]
    stamps = [epoch(p["meterValue"][0]["timestamp"]) for a, p in log if a == "MeterValues"]
    assert stamps == [T0 + 90, T0 + 100]  # the newest kept, in order
    assert len(log) == queued - st.dropped_messages  # nothing lost beyond what was counted
    assert st.offline_delivered == len(log)


def test_with_only_starts_and_stops_queued_a_new_sample_is_the_one_dropped() -> None:
    rec = Recorder()
    st, c = make({**OFFLINE, "disconnectedMeterValueSampleInterval": 10}, observer=rec)
    st.queue_limit = 1
    c.link_down(T0 + 5)
    offline_session(st, c, T0 + 10, T0 + 35)  # samples at +20, +30
    assert st.dropped_messages == 2
    assert rec.of("message_dropped") == [("MeterValues",), ("MeterValues",)]
    assert st.queued == 2  # Start and Stop, over the limit: never dropped
    c.link_up(T0 + 100)
    assert [a for a, _ in tx_log(c)] == ["StartTransaction", "StopTransaction"]


def test_a_failed_delivery_is_retried_and_holds_back_the_rest_of_the_queue() -> None:
    st, c = make(
        {**OFFLINE, "TransactionMessageAttempts": 3, "TransactionMessageRetryInterval": 15}
    )
    c.link_down(T0 + 5)
    offline_session(st, c, T0 + 10, T0 + 80)  # one sample at +70
    c.errors["StartTransaction"] = 2
    c.link_up(T0 + 100)
    c.run(T0 + 200)
    sent = [(s.at, s.action) for s in c.log if s.action in TX_ACTIONS]
    # Attempt n waits RetryInterval * (n - 1) after the last failure; nothing overtakes.
    assert sent == [
        (T0 + 100, "StartTransaction"),
        (T0 + 115, "StartTransaction"),
        (T0 + 145, "StartTransaction"),
        (T0 + 145, "MeterValues"),
        (T0 + 145, "StopTransaction"),
    ]
    assert st.dropped_messages == 0
    assert st.transaction_resends == 2


def test_a_start_given_up_on_drops_what_cannot_name_its_transaction_counted() -> None:
    rec = Recorder()
    st, c = make(OFFLINE, observer=rec)
    c.link_down(T0 + 5)
    offline_session(st, c, T0 + 10, T0 + 80)
    c.errors["StartTransaction"] = 99
    c.link_up(T0 + 100)
    c.run(T0 + 200)
    assert [a for a, _ in tx_log(c)] == ["StartTransaction", "StartTransaction"]
    assert rec.of("message_dropped") == [
        ("StartTransaction",),
        ("MeterValues",),
        ("StopTransaction",),
    ]
    assert st.dropped_messages == 3 and st.transaction_backlog == 0


# -- a timeout is not a failure to process (issue 12, item 3) ---------------------------


def test_timeouts_count_no_attempt_and_no_message_of_the_session_is_dropped() -> None:
    rec = Recorder()
    st, c = make(
        {"TransactionMessageAttempts": 2, "TransactionMessageRetryInterval": 15}, observer=rec
    )
    c.timeouts = {"StartTransaction": 5, "MeterValues": 3, "StopTransaction": 3}
    c.run(T0 + 10)
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG1")
    c.run(T0 + 400)
    c.do(st.unplug)
    c.run(T0 + 600)
    log = tx_log(c)
    starts = [p for a, p in log if a == "StartTransaction"]
    assert len(starts) == 6 and all(p == starts[0] for p in starts)  # the same message
    answered_id = c.next_transaction_id
    later = [p for a, p in log if a != "StartTransaction"]
    assert later and all(p["transactionId"] == answered_id for p in later)
    assert [a for a, _ in log][-1] == "StopTransaction"
    assert rec.of("message_dropped") == [] and st.dropped_messages == 0
    assert st.transaction_backlog == 0


def test_meter_values_wait_for_the_id_of_a_start_the_csms_is_slow_to_answer() -> None:
    st, c = make({"MeterValueSampleInterval": 10, "TransactionMessageRetryInterval": 30})
    c.timeouts = {"StartTransaction": 4}
    c.run(T0 + 10)
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG1")
    c.run(T0 + 200)
    log = tx_log(c)
    first_answer = [s.at for s in c.sent("StartTransaction")][-1]
    assert first_answer == T0 + 10 + 4 * 30
    sent_before = [s for s in c.log if s.action == "MeterValues" and s.at < first_answer]
    assert sent_before == []  # nothing names the transaction before the CSMS did
    values = [p for a, p in log if a == "MeterValues"]
    assert len(values) >= 18  # every sample since the start, none lost
    assert all(p["transactionId"] == c.next_transaction_id for p in values)
    assert st.dropped_messages == 0


def test_a_timed_out_message_stays_first_and_goes_first_after_the_reconnect() -> None:
    st, c = make({"TransactionMessageRetryInterval": 300, "MeterValueSampleInterval": 0})
    c.run(T0 + 10)
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG1")
    c.timeouts = {"StopTransaction": 1}
    c.run(T0 + 50)
    c.do(st.unplug)  # the StopTransaction times out at +50
    assert st.transaction_backlog == 1
    c.link_down(T0 + 60)
    c.run(T0 + 70)
    c.do(st.plug_in)
    c.do(st.present_tag, "TAG2")  # a new session, offline: queued behind the Stop
    c.link_up(T0 + 100)  # long before the retry interval is over
    after = [s for s in c.log if s.at >= T0 + 100 and s.action in TX_ACTIONS]
    assert [(s.at, s.action) for s in after[:2]] == [
        (T0 + 100, "StopTransaction"),
        (T0 + 100, "StartTransaction"),
    ]
    assert after[0].payload["transactionId"] == 1001
    assert st.dropped_messages == 0 and st.transaction_resends == 1
