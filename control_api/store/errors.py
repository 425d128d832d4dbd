"""What the store's operations raise besides SQLAlchemy's own errors."""

from __future__ import annotations

from core.errors import StoreError


class Conflict(StoreError):
    """The change clashes with what is stored (a name or number already taken, a concurrent
    update, an agent still routed from numbers). The message says which field."""


class NotFound(StoreError, LookupError):
    """A row the operation needs does not exist in the tenant (the message names it)."""
