"""The locustfile ``fleet run`` hands to Locust (the same as locustfiles/chargepro.py).

Load shapes (fleet.locust.shapes) are exported only on request, since Locust runs the
first shape class it finds: ``FLEET_SHAPE=ramp|steps|boot-storm`` exports that one,
``FLEET_SHAPE=all`` every one (for the web UI's ``--class-picker``).
"""

import os

from fleet.locust import shapes
from fleet.locust.user import ChargeProUser

__all__ = ["ChargeProUser"]

_wanted = os.environ.get("FLEET_SHAPE", "")
_name = _shape = None
for _name, _shape in shapes.SHAPES.items():
    if _wanted == _name or (_wanted == "all" and _name != "capacity"):  # capacity: by plan
        globals()[_shape.__name__] = _shape
        __all__.append(_shape.__name__)
del _name, _shape  # Locust takes any shape class in the module's namespace
