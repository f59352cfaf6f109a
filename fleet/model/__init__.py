"""The Schneider Charge Pro, sans-I/O: events in (a CALL arrived, time passed, the cable
was plugged in), decisions out (CALLs to send, answers, statuses, effects).

Where things live:

* ``station``: the facade the engine drives. Lifecycle (boot, heartbeat, Reset and
  reboot, the link going up and down) and routing; imports everything below.
* ``features/``: the behaviour, one module per OCPP 1.6 feature profile (see its
  docstring). Features see the station only as ``port.StationPort``.
* ``outbox``: the outgoing CALLs; transaction-message ordering, retries and delivery.
* ``port``: the interface between the station and its features.
* ``messages``: TypedDicts of every OCPP message the model sends or answers, generated
  from the official schemas (tools/gen_messages.py); ``actions``: which those are.
* ``records``: shared records (Transaction, BootInfo, effects, the Observer).
* data modules, no behaviour of the station: ``config`` (keys), ``connector`` (status
  derivation), ``meter`` (energy, EV), ``auth`` (local list, cache), ``reservation``,
  ``smart_charging`` (profile store, composite schedule), ``faults`` (vendor errors).

Imports go one way, from ``station`` down; tests/test_layers.py checks it. Import each
name from the module that defines it: ``station`` re-exports nothing (``Reboot`` is
``records.Reboot``, ``Outgoing`` is ``outbox.Outgoing``).
"""
