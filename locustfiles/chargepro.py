"""Schneider Charge Pro stations as Locust users.

    locust -f locustfiles/chargepro.py --host ws://127.0.0.1:9000/ocpp
    locust -f locustfiles/chargepro.py --host ws://127.0.0.1:9000/ocpp \
        --headless -u 100 -r 20 -t 1m --fleet-profile idle

Fleet options (see ``locust --help``): --fleet-profile, --fleet-seed,
--fleet-station-prefix, --fleet-metrics-port, --fleet-no-validate.
"""

from fleet.locust.user import ChargeProUser

__all__ = ["ChargeProUser"]
