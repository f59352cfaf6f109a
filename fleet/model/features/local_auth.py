"""The LocalAuthListManagement profile: SendLocalList and GetLocalListVersion.

The list itself (and the Authorization Cache) is :mod:`fleet.model.auth`; the
authorization flow that uses it is features/transaction.py.
"""

from __future__ import annotations

from fleet.model.messages import (
    GetLocalListVersionRequest,
    GetLocalListVersionResponse,
    SendLocalListRequest,
    SendLocalListResponse,
)
from fleet.model.port import StationPort, handler


def on_get_local_list_version(
    st: StationPort, payload: GetLocalListVersionRequest, now: float
) -> GetLocalListVersionResponse:
    """0 before any list was sent; never -1 (the profile is supported)."""
    return {"listVersion": st.auth.local_list.version}


def on_send_local_list(
    st: StationPort, payload: SendLocalListRequest, now: float
) -> SendLocalListResponse:
    """Updates are taken whatever ``LocalAuthListEnabled`` says: that key decides whether
    the list is used to authorize, and a CSMS fills the list before enabling it."""
    config = st.config
    status = st.auth.local_list.update(
        payload,
        max_length=config.get_int("LocalAuthListMaxLength"),
        max_send=config.get_int("SendLocalListMaxLength"),
    )
    return {"status": status}


HANDLERS = {
    "GetLocalListVersion": handler(on_get_local_list_version),
    "SendLocalList": handler(on_send_local_list),
}
