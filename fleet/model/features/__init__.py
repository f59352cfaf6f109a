"""The Charge Pro's behaviour, one module per OCPP 1.6 feature profile (as the guide's
``SupportedFeatureProfiles`` lists them) plus the areas the profiles share:

* ``core``: configuration, availability, remote start/stop, unlock, data transfer,
  clear cache (the Core profile's CSMS-initiated operations but Reset, which is
  lifecycle and lives in ``station.py``);
* ``transaction``: authorization flow, start/stop, the hardware events of a session
  (cable, badge, EV), the energy limit of a refused idTag;
* ``metering``: meter values and the sampling clock;
* ``status``: connector statuses, StatusNotification, faults;
* ``firmware``: FirmwareManagement (GetDiagnostics, UpdateFirmware);
* ``local_auth``: LocalAuthListManagement (SendLocalList, GetLocalListVersion);
* ``reservation``: Reservation (ReserveNow, CancelReservation, expiry);
* ``smart_charging``: SmartCharging (the CSMS operations and the offered current);
* ``remote_trigger``: RemoteTrigger (TriggerMessage).

Rules: a feature module receives the station as a
:class:`~fleet.model.port.StationPort` and imports only the data modules of
``fleet.model`` (config, connector, auth, meter, reservation, smart_charging, faults),
``records``, ``outbox`` and ``port``: never ``station.py``, and of the other features
only ``metering`` (the sampled values a transaction and a trigger both send). What one
feature needs of another is a method of the port (the station forwards it), so no
feature depends on another's internals. tests/test_layers.py keeps this true.
A module answering CSMS CALLs exports ``HANDLERS`` (action -> handler); the station
merges them into its routing table.

The data modules keep their flat names (``fleet/model/reservation.py`` is the
reservation record, ``features/reservation.py`` the profile's operations), hence a
package rather than more flat modules.
"""
