"""The locustfile ``fleet run`` hands to Locust (the same as locustfiles/chargepro.py)."""

from fleet.locust.user import ChargeProUser

__all__ = ["ChargeProUser"]
