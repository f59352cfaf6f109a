"""Where the file transfers were before the model was split by feature profile: the
engine and older tests import them from here. The code is
:mod:`fleet.model.features.firmware`."""

from fleet.model.features import firmware
from fleet.model.features.firmware import *  # noqa: F403

__all__ = firmware.__all__
