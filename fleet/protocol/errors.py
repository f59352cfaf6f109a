"""OCPP-J 1.6 CALLERROR codes, and the exception that carries one.

The codes are spelled as OCPP 1.6 spells them (``OccurenceConstraintViolation``
with one 'r' is the standard's spelling, not a typo here).
"""

from __future__ import annotations

from typing import Any, Final

NOT_IMPLEMENTED: Final = "NotImplemented"
NOT_SUPPORTED: Final = "NotSupported"
INTERNAL_ERROR: Final = "InternalError"
PROTOCOL_ERROR: Final = "ProtocolError"
SECURITY_ERROR: Final = "SecurityError"
FORMATION_VIOLATION: Final = "FormationViolation"
PROPERTY_CONSTRAINT_VIOLATION: Final = "PropertyConstraintViolation"
OCCURENCE_CONSTRAINT_VIOLATION: Final = "OccurenceConstraintViolation"
TYPE_CONSTRAINT_VIOLATION: Final = "TypeConstraintViolation"
GENERIC_ERROR: Final = "GenericError"

ERROR_CODES: Final = frozenset(
    {
        NOT_IMPLEMENTED,
        NOT_SUPPORTED,
        INTERNAL_ERROR,
        PROTOCOL_ERROR,
        SECURITY_ERROR,
        FORMATION_VIOLATION,
        PROPERTY_CONSTRAINT_VIOLATION,
        OCCURENCE_CONSTRAINT_VIOLATION,
        TYPE_CONSTRAINT_VIOLATION,
        GENERIC_ERROR,
    }
)


class OcppError(Exception):
    """Raised by a handler or the validator; becomes a CALLERROR on the wire."""

    def __init__(self, code: str, description: str = "", details: dict[str, Any] | None = None):
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description
        self.details = details or {}
