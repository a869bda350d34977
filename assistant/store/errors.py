"""What the store refuses, as exceptions a caller maps to a message (or an HTTP status)."""

from __future__ import annotations


class StoreError(Exception):
    """Base of everything the store raises on purpose."""


class NotFound(StoreError, LookupError):
    """No such conversation or message *for this user*: someone else's looks exactly like a missing one."""


class Forbidden(StoreError, PermissionError):
    """The user exists but their role does not allow this (e.g. a non-admin reading all feedback)."""


class AccountError(StoreError, ValueError):
    """A bad account operation: unknown or duplicate name, empty password, …"""


class AuthError(StoreError):
    """Wrong name, password, key or session: deliberately one message for all of them."""

    def __init__(self, message: str = "wrong name or password") -> None:
        super().__init__(message)


class Throttled(AuthError):
    """Too many failed logins: the next attempt is allowed in `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many failed logins; try again in {max(1, round(retry_after))} s")
