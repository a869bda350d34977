"""Accounts: users and roles, argon2 password hashes, API keys, browser sessions, login throttling.

Passwords and keys are only ever stored hashed and never logged. An API key reads
`sk-<key id>-<secret>`: the key id is public and indexed, so checking a key verifies one hash.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update

from assistant.store.db import Database
from assistant.store.errors import AccountError, AuthError, Throttled
from assistant.store.models import ROLES, ApiKey, LoginSession, User, utcnow
from assistant.store.throttle import LoginThrottle

LOCAL_USER = "(local)"  # the one user when auth is off; not a valid account name, has no password
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
KEY_RE = re.compile(r"^sk-([0-9a-f]{16})-([A-Za-z0-9_-]{20,100})$")


@dataclass
class AccountInfo:
    name: str
    role: str
    created: datetime
    api_keys: int


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def auth_enabled(settings: Any, host: str, accounts: Accounts) -> bool:
    """The `auth` setting: `on`/`off` as said; `auto` is on when any account exists or the app listens
    on a host other than loopback."""
    if settings.auth == "on":
        return True
    if settings.auth == "off":
        return False
    return accounts.exist() or not is_loopback(host)


def cannot_start(settings: Any, host: str, accounts: Accounts, no_auth: bool = False) -> str | None:
    """Why the app must not start as configured (logins required but nobody can log in), or None.
    `no_auth` is the explicit `--no-auth` of `assistant serve`: anyone who reaches the port gets in."""
    if no_auth or not auth_enabled(settings, host, accounts) or accounts.exist():
        return None
    return (
        f"logins are required (listening on {host}, auth = {settings.auth}) but there is no account yet: "
        "create one with `assistant users add NAME --admin`, or pass --no-auth to let anyone who can "
        "reach the port in"
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Accounts:
    def __init__(
        self,
        db: Database,
        settings: Any,
        clock: Callable[[], datetime] = utcnow,
        throttle: LoginThrottle | None = None,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.throttle = throttle or LoginThrottle.from_settings(settings)
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash = self.hasher.hash(secrets.token_hex(16))  # equal work for unknown names

    # --- accounts ------------------------------------------------------------------------------
    @staticmethod
    def _check_password(password: str) -> None:
        if not password or not password.strip():
            raise AccountError("the password cannot be empty")
        if len(password) > 1024:
            raise AccountError("the password is longer than 1024 characters")

    def _user(self, s: Any, name: str) -> User:
        user = s.scalars(select(User).where(User.name == name)).first()
        if user is None or name == LOCAL_USER:
            raise AccountError(f"no account named {name!r}")
        return user

    def add(self, name: str, password: str, admin: bool = False) -> User:
        if not NAME_RE.match(name or ""):
            raise AccountError(
                "an account name is 1-64 letters, digits or _ . @ - and starts with a letter or digit"
            )
        self._check_password(password)
        with self.db.session() as s:
            if s.scalars(select(User.id).where(User.name == name)).first() is not None:
                raise AccountError(f"an account named {name!r} already exists")
            user = User(
                name=name,
                role="admin" if admin else "user",
                password_hash=self.hasher.hash(password),
                created=self.clock(),
            )
            s.add(user)
        return user

    def remove(self, name: str) -> None:
        """Remove an account with its keys, sessions and conversations (its feedback stays, unnamed)."""
        with self.db.session() as s:
            s.delete(self._user(s, name))

    def passwd(self, name: str, password: str) -> None:
        """Set a new password; every browser session of the account is logged out."""
        self._check_password(password)
        with self.db.session() as s:
            user = self._user(s, name)
            user.password_hash = self.hasher.hash(password)
            s.execute(delete(LoginSession).where(LoginSession.user_id == user.id))

    def set_role(self, name: str, role: str) -> None:
        if role not in ROLES:
            raise AccountError(f"a role is one of {', '.join(ROLES)}")
        with self.db.session() as s:
            self._user(s, name).role = role

    def get(self, name: str) -> User:
        with self.db.session() as s:
            return self._user(s, name)

    def list(self) -> list[AccountInfo]:
        keys = select(func.count(ApiKey.id)).where(ApiKey.user_id == User.id).scalar_subquery()
        with self.db.session() as s:
            rows = s.execute(
                select(User.name, User.role, User.created, keys)
                .where(User.name != LOCAL_USER)
                .order_by(User.name)
            )
            return [AccountInfo(*row) for row in rows]

    def exist(self) -> bool:
        """Whether any account (someone who can log in) exists."""
        with self.db.session() as s:
            return (
                s.scalars(select(User.id).where(User.password_hash.is_not(None)).limit(1)).first() is not None
            )

    def local_user(self) -> User:
        """The single user of an app without logins (created on first use; an admin: it is yours)."""
        with self.db.session() as s:
            user = s.scalars(select(User).where(User.name == LOCAL_USER)).first()
            if user is None:
                user = User(name=LOCAL_USER, role="admin", password_hash=None, created=self.clock())
                s.add(user)
            return user

    def take_local(self, name: str) -> int:
        """Give the conversations made without login (the local user's) to an account; how many."""
        from assistant.store.models import Conversation

        with self.db.session() as s:
            user = self._user(s, name)
            local = s.scalars(select(User.id).where(User.name == LOCAL_USER)).first()
            if local is None:
                return 0
            moved = s.execute(
                update(Conversation).where(Conversation.owner_id == local).values(owner_id=user.id)
            )
            return moved.rowcount or 0

    # --- passwords -----------------------------------------------------------------------------
    def authenticate_password(self, name: str, password: str, client: str = "") -> User:
        """The user, or AuthError (one message whatever was wrong); Throttled after repeated failures."""
        keys = [f"name:{name.lower()}"] + ([f"client:{client}"] if client else [])
        wait = self.throttle.wait(keys)
        if wait > 0:
            raise Throttled(wait)
        with self.db.session() as s:
            user = s.scalars(select(User).where(User.name == name)).first()
            stored = user.password_hash if user is not None else None
            try:
                self.hasher.verify(stored or self._dummy_hash, password)
                ok = stored is not None
            except (VerificationError, InvalidHashError):
                ok = False
            if not ok or user is None:
                self.throttle.failed(keys)
                raise AuthError()
            if self.hasher.check_needs_rehash(stored):
                user.password_hash = self.hasher.hash(password)
        self.throttle.succeeded(keys[:1])
        return user

    # --- API keys ------------------------------------------------------------------------------
    def new_api_key(self, name: str) -> str:
        """A new key for the account, returned in plain text this once (only its hash is kept)."""
        key_id = secrets.token_hex(8)
        key = f"sk-{key_id}-{secrets.token_urlsafe(32)}"
        with self.db.session() as s:
            user = self._user(s, name)
            s.add(
                ApiKey(key_id=key_id, key_hash=self.hasher.hash(key), user_id=user.id, created=self.clock())
            )
        return key

    def revoke_api_keys(self, name: str) -> int:
        with self.db.session() as s:
            user = self._user(s, name)
            return s.execute(delete(ApiKey).where(ApiKey.user_id == user.id)).rowcount or 0

    def authenticate_key(self, key: str) -> User:
        match = KEY_RE.match((key or "").strip())
        if not match:
            raise AuthError("invalid API key")
        with self.db.session() as s:
            row = s.execute(
                select(ApiKey, User).join(User, User.id == ApiKey.user_id).where(ApiKey.key_id == match[1])
            ).first()
            try:
                self.hasher.verify(row[0].key_hash if row else self._dummy_hash, key.strip())
            except (VerificationError, InvalidHashError):
                row = None
            if row is None:
                raise AuthError("invalid API key")
            row[0].last_used = self.clock()
            return row[1]

    # --- browser sessions ----------------------------------------------------------------------
    def create_session(self, user: User) -> str:
        """A new login session; the returned token goes in a cookie, only its hash is stored."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self.db.session() as s:
            s.add(
                LoginSession(
                    token_hash=_sha256(token),
                    user_id=user.id,
                    created=now,
                    expires=now + timedelta(hours=self.settings.session_ttl_hours),
                )
            )
        return token

    def validate_session(self, token: str) -> User:
        """The session's user, or AuthError when it is unknown or expired (an expired one is deleted)."""
        if not token:
            raise AuthError("not logged in")
        with self.db.session() as s:
            row = s.execute(
                select(LoginSession, User)
                .join(User, User.id == LoginSession.user_id)
                .where(LoginSession.token_hash == _sha256(token))
            ).first()
            if row is None:
                raise AuthError("not logged in")
            if row[0].expires <= self.clock():
                s.delete(row[0])
                expired = True
            else:
                expired = False
        if expired:
            raise AuthError("the session has expired; log in again")
        return row[1]

    def end_session(self, token: str) -> None:
        with self.db.session() as s:
            s.execute(delete(LoginSession).where(LoginSession.token_hash == _sha256(token)))

    def purge_expired_sessions(self) -> int:
        with self.db.session() as s:
            return s.execute(delete(LoginSession).where(LoginSession.expires <= self.clock())).rowcount or 0
