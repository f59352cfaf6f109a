"""Schneider Charge Pro stations as Locust users (one user is one station).

    locust -f locustfiles/chargepro.py --host ws://127.0.0.1:9000/ocpp
    locust -f locustfiles/chargepro.py --host ws://127.0.0.1:9000/ocpp \
        --headless -u 100 -r 20 -t 1m --fleet-profile idle
    FLEET_SHAPE=all locust -f locustfiles/chargepro.py --class-picker ...   # pick a shape

Fleet options (shown in the web UI's start form; Locust prints ``--help`` before it
loads a locustfile, so they are listed here and in the README):
--fleet-profile, --fleet-seed, --fleet-time-compression, --fleet-offline-share,
--fleet-fault-rate, --fleet-station-prefix, --fleet-metrics-port, --fleet-metrics-host,
--fleet-ca-file, --fleet-client-cert, --fleet-client-key, --fleet-insecure,
--fleet-no-validate.

This is the same locustfile ``fleet run`` uses: ``fleet.locust.locustfile``.
"""

from fleet.locust.locustfile import *  # noqa: F403  (ChargeProUser, and a shape on request)
