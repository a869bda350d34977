"""Accounts: users and roles, argon2 password hashes, API keys, browser sessions, login throttling.

Passwords and keys are only ever stored hashed and never logged. An API key reads
`sk-<key id>-<secret>`: the key id is looked up first, so a key whose id does not exist costs one
indexed read and no hash; a known id costs one argon2 verification, after which the key is
remembered (its SHA-256) until it is revoked. At most `HASH_SLOTS` argon2 computations run at once
(each takes 64 MB), so a flood of guesses queues instead of exhausting memory.

A browser an account logged in from gets a *device cookie* signed with a server secret; login
attempts from it are throttled on their own, so strangers who fail on that account (and slow down
everyone else's attempts on it) never lock its owner out of a browser the owner used before.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from assistant.store.db import Database
from assistant.store.errors import AccountError, AuthError, Throttled
from assistant.store.models import ROLES, ApiKey, AppSecret, LoginSession, User, utcnow
from assistant.store.throttle import DatabaseState, Key, LoginThrottle

LOCAL_USER = "(local)"  # the one user when auth is off; not a valid account name, has no password
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
KEY_RE = re.compile(r"^sk-([0-9a-f]{16})-([A-Za-z0-9_-]{20,100})$")
DEVICE_RE = re.compile(r"^([A-Za-z0-9_-]{16,64})\.([0-9a-f]{64})$")
HASH_SLOTS = 2  # argon2 verifications at once
VERIFIED_KEYS = 10_000  # API keys remembered after one verification


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
        self.throttle = throttle or LoginThrottle.from_settings(settings, DatabaseState(db))
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash = self.hasher.hash(secrets.token_hex(16))  # equal work for unknown names
        self._hash_slots = threading.BoundedSemaphore(HASH_SLOTS)
        self._verified: OrderedDict[str, tuple[str, str]] = OrderedDict()  # key id -> (hash, sha256)
        self._verified_lock = threading.Lock()
        self._device_secret: bytes | None = None

    def _verify(self, stored: str, secret: str) -> bool:
        with self._hash_slots:
            try:
                return self.hasher.verify(stored, secret)
            except (VerificationError, InvalidHashError):
                return False

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

    def passwd(self, name: str, password: str) -> int:
        """Set a new password; the account is logged out everywhere: every browser session ends and
        every API key is revoked. Returns how many API keys were revoked."""
        self._check_password(password)
        with self.db.session() as s:
            user = self._user(s, name)
            user.password_hash = self.hasher.hash(password)
            s.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
            return s.execute(delete(ApiKey).where(ApiKey.user_id == user.id)).rowcount or 0

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
        """The single user of an app without logins (created on first use; an admin: it is yours).
        A fresh app's first page asks for it from several requests at once: the one that creates it
        holds the write lock from its read on (SQLite), and one that lost a race to insert it
        (PostgreSQL: the name is unique) reads the winner's."""
        query = select(User).where(User.name == LOCAL_USER)
        with self.db.session() as s:
            if (user := s.scalars(query).first()) is not None:
                return user
        try:
            with self.db.session(write=True) as s:
                if (user := s.scalars(query).first()) is None:
                    user = User(name=LOCAL_USER, role="admin", password_hash=None, created=self.clock())
                    s.add(user)
                return user
        except IntegrityError:
            with self.db.session() as s:
                return s.scalars(query).one()

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

    # --- passwords ---------------------------------------------------------------------------
    def login_keys(self, name: str, client: str = "", device: str = "") -> list[Key]:
        """The throttle keys of a login attempt. From a browser this account logged in from before
        (a valid device cookie): that browser's own count only. From anywhere else: the account and
        client together, the client (one address trying many names), the account from unknown
        browsers, and a global ceiling on failures everywhere (a distributed guess)."""
        st, who = self.settings, name.lower()
        if device and self.device_ok(device, name):
            return [Key(f"device:{device.split('.', 1)[0]}:{who}", st.login_free_failures)]
        keys = [Key(f"pair:{who}|{client}", st.login_free_failures)]
        if client:
            keys.append(Key(f"client:{client}", st.login_client_free_failures))
        keys += [
            Key(f"account:{who}", st.login_account_free_failures),
            Key("global", st.login_global_free_failures),
        ]
        return keys

    def authenticate_password(self, name: str, password: str, client: str = "", device: str = "") -> User:
        """The user, or AuthError (one message whatever was wrong); Throttled after repeated failures."""
        keys = self.login_keys(name, client, device)
        wait = self.throttle.wait(keys)
        if wait > 0:
            raise Throttled(wait)
        with self.db.session() as s:
            user = s.scalars(select(User).where(User.name == name)).first()
            stored = user.password_hash if user is not None else None
            ok = self._verify(stored or self._dummy_hash, password) and stored is not None
            if not ok or user is None:
                self.throttle.failed(keys)
                raise AuthError()
            if self.hasher.check_needs_rehash(stored):
                user.password_hash = self.hasher.hash(password)
        self.throttle.succeeded([k for k in keys if k.name.startswith(("pair:", "device:"))])
        return user

    # --- browsers an account logged in from ----------------------------------------------------
    def _secret(self, name: str) -> bytes:
        """A server secret made once and shared through the database (every replica signs alike)."""
        with self.db.session(write=True) as s:
            row = s.get(AppSecret, name)
            if row is None:
                row = AppSecret(name=name, value=secrets.token_hex(32))
                s.add(row)
            return bytes.fromhex(row.value)

    def _device_mac(self, nonce: str, name: str) -> str:
        if self._device_secret is None:
            self._device_secret = self._secret("device-cookie")
        return hmac.new(self._device_secret, f"{nonce}:{name.lower()}".encode(), hashlib.sha256).hexdigest()

    def device_token(self, user: User) -> str:
        """A device cookie for a browser `user` just logged in from."""
        nonce = secrets.token_urlsafe(16)
        return f"{nonce}.{self._device_mac(nonce, user.name)}"

    def device_ok(self, token: str, name: str) -> bool:
        m = DEVICE_RE.match(token or "")
        return bool(m) and hmac.compare_digest(m[2], self._device_mac(m[1], name))

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

    def authenticate_key(self, key: str, client: str = "") -> User:
        """The key's user, or AuthError. Failures are throttled per client like logins (Throttled);
        a key whose id is unknown is refused without computing any hash."""
        keys = [Key(f"client:{client}", self.settings.login_client_free_failures)] if client else []
        if keys and (wait := self.throttle.wait(keys)) > 0:
            raise Throttled(wait)
        key = (key or "").strip()
        match = KEY_RE.match(key)
        row = None
        if match:
            with self.db.session() as s:
                row = s.execute(
                    select(ApiKey, User)
                    .join(User, User.id == ApiKey.user_id)
                    .where(ApiKey.key_id == match[1])
                ).first()
        if row is None or not self._key_matches(row[0], key):
            self.throttle.failed(keys)
            raise AuthError("invalid API key")
        with self.db.session() as s:
            s.execute(update(ApiKey).where(ApiKey.id == row[0].id).values(last_used=self.clock()))
        return row[1]

    def _key_matches(self, stored: ApiKey, key: str) -> bool:
        digest = hashlib.sha256(key.encode()).hexdigest()
        with self._verified_lock:
            known = self._verified.get(stored.key_id)
        if known is not None and known[0] == stored.key_hash:
            return hmac.compare_digest(known[1], digest)
        if not self._verify(stored.key_hash, key):
            return False
        with self._verified_lock:
            self._verified[stored.key_id] = (stored.key_hash, digest)
            while len(self._verified) > VERIFIED_KEYS:
                self._verified.popitem(last=False)
        return True

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
