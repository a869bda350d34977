"""Accounts on a real SQLite file and a real PostgreSQL server: argon2 hashes (never plain text),
passwords, API keys, sessions expiring on an injected clock, the login throttle's decisions, the
`auth` setting, and the `assistant users` / `feedback export` commands with passwords on stdin."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from pg_server import postgres  # noqa: F401 - fixture
from store_helpers import Clock, db  # noqa: F401 - fixture
from typer.testing import CliRunner

from assistant.settings import Settings
from assistant.store import (
    AccountError,
    Accounts,
    AuthError,
    ConversationStore,
    Throttled,
    auth_enabled,
    cannot_start,
)
from assistant.store.accounts import LOCAL_USER, is_loopback
from assistant.store.throttle import DatabaseState, Key, LoginThrottle, MemoryState


class Ticks:
    """A monotonic clock in seconds that moves only when told."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def dump(database) -> str:  # noqa: F811
    """Every value of every table, as text: what someone with the database file would see."""
    meta = sa.MetaData()
    meta.reflect(database.engine)
    with database.engine.connect() as conn:
        return "\n".join(str(row) for table in meta.sorted_tables for row in conn.execute(table.select()))


def test_passwords_and_keys_are_stored_as_argon2_hashes_only(db, settings, tmp_path):  # noqa: F811
    accounts = Accounts(db, settings)
    accounts.add("alice", "correct horse battery staple")
    key = accounts.new_api_key("alice")
    with db.session() as s:
        stored = s.execute(sa.text("SELECT password_hash FROM users WHERE name = 'alice'")).scalar()
        key_hash = s.execute(sa.text("SELECT key_hash FROM api_keys")).scalar()
    assert stored.startswith("$argon2id$") and key_hash.startswith("$argon2id$")
    everything = dump(db)
    assert "correct horse" not in everything and key not in everything
    assert key.split("-")[1] in everything  # only the public key id is stored as is
    if db.engine.url.get_backend_name() == "sqlite":  # nor in the file's bytes (WAL included)
        db.dispose()
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("assistant.db*"))
        assert b"correct horse" not in raw and key.encode() not in raw


def test_password_logins(db, settings):  # noqa: F811
    accounts = Accounts(db, settings)
    alice = accounts.add("alice", "pw-alice", admin=True)
    assert alice.is_admin and accounts.authenticate_password("alice", "pw-alice").id == alice.id
    with pytest.raises(AuthError) as wrong:
        accounts.authenticate_password("alice", "pw-bob")
    with pytest.raises(AuthError) as unknown:
        accounts.authenticate_password("mallory", "pw-alice")
    assert str(wrong.value) == str(unknown.value)  # a login never says which names exist
    with pytest.raises(AuthError):  # the local user (auth off) can never log in
        accounts.authenticate_password(LOCAL_USER, "")
    accounts.passwd("alice", "new-pw")
    with pytest.raises(AuthError):
        accounts.authenticate_password("alice", "pw-alice")
    assert accounts.authenticate_password("alice", "new-pw").id == alice.id

    for bad_name in ("", "a b", "-dash", "x" * 65, LOCAL_USER, "robert'); DROP TABLE users;--"):
        with pytest.raises(AccountError):
            accounts.add(bad_name, "pw")
    with pytest.raises(AccountError, match="already exists"):
        accounts.add("alice", "pw")
    with pytest.raises(AccountError, match="empty"):
        accounts.add("bob", "   ")
    with pytest.raises(AccountError, match="no account"):
        accounts.passwd("bob", "pw")


def test_the_throttle_delays_after_the_free_failures_and_forgets():
    ticks = Ticks()
    state = MemoryState()
    t = LoginThrottle(state, delay_s=1.0, max_delay_s=10.0, window_s=600.0, clock=ticks)
    keys = [Key("pair:alice|x", 3)]
    assert [t.delay_after(n, 3) for n in range(8)] == [0, 0, 0, 0, 1, 2, 4, 8]
    assert t.delay_after(50, 3) == 10.0  # capped
    for _ in range(3):
        assert t.wait(keys) == 0
        t.failed(keys)
    assert t.wait(keys) == 0  # three free failures: the fourth attempt may go at once
    t.failed(keys)
    assert t.wait(keys) == 1.0
    ticks.t += 1.0
    assert t.wait(keys) == 0
    t.failed(keys)
    assert t.wait(keys) == 2.0
    ticks.t += 0.5
    assert t.wait(keys) == 1.5
    assert t.wait([Key("pair:bob|x", 3)]) == 0  # other keys are not slowed
    assert t.wait([Key("pair:bob|x", 3), *keys]) == 1.5  # any slowed key slows the attempt
    ticks.t += 601  # the window passes without failures: forgotten
    assert t.wait(keys) == 0
    t.failed(keys)
    assert t.wait(keys) == 0
    t.succeeded(keys)
    assert "pair:alice|x" not in state.records


def throttled_settings(**kw):
    return Settings(
        login_free_failures=3,
        login_client_free_failures=4,
        login_account_free_failures=6,
        login_delay_s=30.0,
        **kw,
    )


def test_repeated_failed_logins_are_refused_until_the_delay_passes(db):  # noqa: F811
    ticks = Ticks()
    settings = throttled_settings()
    accounts = Accounts(
        db, settings, throttle=LoginThrottle.from_settings(settings, DatabaseState(db), ticks)
    )
    accounts.add("alice", "right")
    for _ in range(4):  # three free failures, and the 4th is still checked: it starts the delay
        with pytest.raises(AuthError) as exc:
            accounts.authenticate_password("alice", "guess", client="10.0.0.9")
        assert not isinstance(exc.value, Throttled)
    with pytest.raises(Throttled) as slowed:  # even the right password waits: guessing gains nothing
        accounts.authenticate_password("alice", "right", client="10.0.0.9")
    assert slowed.value.retry_after == 30.0 and "30 s" in str(slowed.value)
    # the same account from another address is not held by that pair's delay
    assert accounts.authenticate_password("alice", "right", client="10.0.0.7").name == "alice"
    ticks.t += 30
    assert accounts.authenticate_password("alice", "right", client="10.0.0.9").name == "alice"

    # one client spraying many names is slowed too, for every name it tries
    for name in ("bob", "carol", "dave", "erin", "frank"):
        with pytest.raises(AuthError):
            accounts.authenticate_password(name, "guess", client="10.6.6.6")
    with pytest.raises(Throttled):
        accounts.authenticate_password("alice", "right", client="10.6.6.6")
    assert accounts.authenticate_password("alice", "right", client="10.0.0.7").name == "alice"


def test_strangers_cannot_lock_the_owner_out_of_a_browser_she_logged_in_from(db):  # noqa: F811
    ticks = Ticks()
    settings = throttled_settings()
    accounts = Accounts(
        db, settings, throttle=LoginThrottle.from_settings(settings, DatabaseState(db), ticks)
    )
    alice = accounts.add("alice", "right")
    device = accounts.device_token(alice)
    assert accounts.device_ok(device, "alice") and not accounts.device_ok(device, "bob")
    assert not accounts.device_ok(device[:-1] + ("0" if device[-1] != "0" else "1"), "alice")
    # Guesses from many addresses: each address and each (name, address) stays under its own limit,
    # but together they exhaust the account's allowance for browsers it never logged in from.
    for i in range(7):  # six free failures; the seventh is checked and starts the delay
        with pytest.raises(AuthError) as exc:
            accounts.authenticate_password("alice", f"guess{i}", client=f"10.1.0.{i}")
        assert not isinstance(exc.value, Throttled)
    with pytest.raises(Throttled):  # a fresh address is held now: the guessing stops
        accounts.authenticate_password("alice", "right", client="10.1.1.1")
    # …but alice's own browser is not: it has its own count, and it gets in.
    assert accounts.authenticate_password("alice", "right", client="10.1.1.1", device=device).id == alice.id
    # a forged or stolen-from-another-account cookie is worth nothing
    bob = accounts.add("bob", "bob-pw")
    with pytest.raises(Throttled):
        accounts.authenticate_password("alice", "right", client="10.1.1.1", device=accounts.device_token(bob))


def test_failures_count_once_across_replicas(db):  # noqa: F811
    """Two app replicas over one database: failures on either count for both."""
    ticks = Ticks()
    settings = throttled_settings()
    replicas = [
        Accounts(db, settings, throttle=LoginThrottle.from_settings(settings, DatabaseState(db), ticks))
        for _ in range(2)
    ]
    replicas[0].add("alice", "right")
    for i in range(4):
        with pytest.raises(AuthError) as exc:
            replicas[i % 2].authenticate_password("alice", "guess", client="10.0.0.9")
        assert not isinstance(exc.value, Throttled)
    for replica in replicas:
        with pytest.raises(Throttled):
            replica.authenticate_password("alice", "right", client="10.0.0.9")


class CountingHasher(PasswordHasher):
    verified: list[str]

    def verify(self, hash, password):  # noqa: A002 - argon2's own parameter name
        self.verified.append(password)
        return super().verify(hash, password)


def test_unknown_api_keys_cost_no_hash_and_are_throttled_per_client(db):  # noqa: F811
    ticks = Ticks()
    settings = throttled_settings()
    hasher = CountingHasher()
    hasher.verified = verified = []
    throttle = LoginThrottle.from_settings(settings, DatabaseState(db), ticks)
    accounts = Accounts(db, settings, throttle=throttle, hasher=hasher)
    accounts.add("alice", "pw")
    key = accounts.new_api_key("alice")
    verified.clear()
    fakes = [f"sk-{i:016x}-{'x' * 43}" for i in range(5)]  # 4 free failures, the 5th starts the delay
    for fake in fakes:  # well-formed keys whose id does not exist: refused, no argon2
        with pytest.raises(AuthError):
            accounts.authenticate_key(fake, client="10.6.6.6")
    assert verified == []
    with pytest.raises(Throttled):  # the client is slowed down after its free failures
        accounts.authenticate_key(key, client="10.6.6.6")
    # the real key from its own client: verified once, then remembered
    for _ in range(5):
        assert accounts.authenticate_key(key, client="10.0.0.1").name == "alice"
    assert len(verified) == 1
    wrong = key[:-4] + "AAAA"  # the right id with a wrong secret: verified, refused
    with pytest.raises(AuthError):
        accounts.authenticate_key(wrong, client="10.0.0.2")
    accounts.revoke_api_keys("alice")  # a remembered key stops working the moment it is revoked
    with pytest.raises(AuthError):
        accounts.authenticate_key(key, client="10.0.0.1")


def test_a_new_password_logs_out_everywhere_api_keys_included(db, settings):  # noqa: F811
    accounts = Accounts(db, settings)
    alice = accounts.add("alice", "old")
    key = accounts.new_api_key("alice")
    session = accounts.create_session(alice)
    assert accounts.passwd("alice", "new") == 1
    with pytest.raises(AuthError):
        accounts.authenticate_key(key)
    with pytest.raises(AuthError):
        accounts.validate_session(session)


def test_sessions_expire_and_end(db):  # noqa: F811
    clock = Clock()
    settings = Settings(session_ttl_hours=2)
    accounts = Accounts(db, settings, clock=clock)
    alice = accounts.add("alice", "pw")
    token = accounts.create_session(alice)
    assert accounts.validate_session(token).id == alice.id
    assert token not in dump(db)  # only its hash is stored
    clock.advance(hours=1, minutes=59)
    assert accounts.validate_session(token).name == "alice"
    clock.advance(minutes=1)
    with pytest.raises(AuthError, match="expired"):
        accounts.validate_session(token)
    with pytest.raises(AuthError, match="not logged in"):  # and it is gone
        accounts.validate_session(token)
    for forged in ("", "x", token[:-1] + ("A" if token[-1] != "A" else "B")):
        with pytest.raises(AuthError):
            accounts.validate_session(forged)

    second, third = accounts.create_session(alice), accounts.create_session(alice)
    accounts.end_session(second)  # log out
    with pytest.raises(AuthError):
        accounts.validate_session(second)
    accounts.passwd("alice", "new")  # a new password logs out everywhere
    with pytest.raises(AuthError):
        accounts.validate_session(third)
    old = accounts.create_session(alice)
    clock.advance(hours=3)
    assert accounts.purge_expired_sessions() == 1
    with pytest.raises(AuthError):
        accounts.validate_session(old)


def test_api_keys(db, settings):  # noqa: F811
    accounts = Accounts(db, settings)
    alice, bob = accounts.add("alice", "pw"), accounts.add("bob", "pw")
    key_a, key_b = accounts.new_api_key("alice"), accounts.new_api_key("bob")
    assert key_a.startswith("sk-") and key_a != key_b
    assert accounts.authenticate_key(key_a).id == alice.id and accounts.authenticate_key(key_b).id == bob.id
    prefix, secret = key_a[:19], key_a[20:]  # "sk-" + 16 hex digits of public id, "-", the secret
    assert len(prefix) == 19 and key_a[19] == "-"
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    forged = [
        f"{prefix}-{flipped}",  # the right public id with a wrong secret
        f"{key_b[:19]}-{secret}",  # bob's id with alice's secret
        key_a + "x",
        "",
        "sk-",
        "Bearer " + key_a,
        "sk-0000000000000000-" + "A" * 43,
    ]
    for key in forged:
        with pytest.raises(AuthError):
            accounts.authenticate_key(key)
    assert accounts.list()[0].api_keys == 1
    assert accounts.revoke_api_keys("alice") == 1
    with pytest.raises(AuthError):
        accounts.authenticate_key(key_a)
    accounts.remove("bob")  # removing an account removes its keys and conversations
    with pytest.raises(AuthError):
        accounts.authenticate_key(key_b)


def test_auth_setting(db):  # noqa: F811
    accounts = Accounts(db, Settings())
    for host in ("127.0.0.1", "localhost", "::1", "127.0.1.1", "[::1]"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.org", ""):
        assert not is_loopback(host), host

    auto, on, off = Settings(auth="auto"), Settings(auth="on"), Settings(auth="off")
    accounts.local_user()  # the no-login user is not an account
    assert not auth_enabled(auto, "127.0.0.1", accounts)
    assert auth_enabled(auto, "0.0.0.0", accounts)  # reachable from elsewhere: logins on
    assert auth_enabled(on, "127.0.0.1", accounts)
    assert not auth_enabled(off, "0.0.0.0", accounts)
    # listening beyond loopback with nobody able to log in: refuse to start, unless --no-auth
    assert "assistant users add NAME --admin" in cannot_start(auto, "0.0.0.0", accounts)
    assert "no account" in cannot_start(on, "127.0.0.1", accounts)
    assert cannot_start(auto, "0.0.0.0", accounts, no_auth=True) is None
    assert cannot_start(off, "0.0.0.0", accounts) is None
    assert cannot_start(auto, "127.0.0.1", accounts) is None
    accounts.add("admin", "pw", admin=True)
    assert cannot_start(auto, "0.0.0.0", accounts) is None
    assert auth_enabled(auto, "127.0.0.1", accounts)  # an account exists: logins on
    assert [a.name for a in accounts.list()] == ["admin"]


# --- the command line ------------------------------------------------------------------------------


@pytest.fixture()
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ASSISTANT_CONFIG", raising=False)
    monkeypatch.delenv("ASSISTANT_DATABASE_URL", raising=False)
    from assistant.cli import app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input, env={"COLUMNS": "200"})

    return invoke


def test_users_commands_with_the_password_on_stdin(run, tmp_path):
    from assistant.store import open_database

    before = open_database(Settings(data_dir=tmp_path / "data"))  # used without login so far
    local = Accounts(before, Settings()).local_user()
    made_locally = ConversationStore(before).create(local, "kept")
    before.dispose()

    added = run("users", "add", "admin", "--admin", "--take-local", input="s3cret pass\n")
    assert added.exit_code == 0, added.output
    assert "s3cret" not in added.output and "1 conversation(s)" in added.output
    assert run("users", "add", "alice", input="alice-pw\n").exit_code == 0
    dup = run("users", "add", "alice", input="x\n")
    assert dup.exit_code == 2 and "already exists" in dup.output
    empty = run("users", "add", "bob", input="")
    assert empty.exit_code == 2 and "empty" in empty.output

    listed = run("users", "list")
    assert listed.exit_code == 0 and "admin" in listed.output and "alice" in listed.output
    assert "bob" not in listed.output

    keyed = run("users", "key", "alice")
    assert keyed.exit_code == 0, keyed.output
    old_key = keyed.output.strip().splitlines()[-1]
    changed = run("users", "passwd", "alice", input="alice-new\n")
    assert changed.exit_code == 0 and "1 API key(s) revoked" in changed.output
    key = run("users", "key", "alice").output.strip().splitlines()[-1]
    assert run("users", "key", "nobody").exit_code == 2

    database = open_database(Settings(data_dir=tmp_path / "data"))
    try:
        accounts = Accounts(database, Settings())
        with pytest.raises(AuthError):  # a new password revoked the keys made before it
            accounts.authenticate_key(old_key)
        alice = accounts.authenticate_key(key)
        assert alice.name == "alice" and not alice.is_admin
        assert accounts.authenticate_password("alice", "alice-new").id == alice.id
        admin = accounts.authenticate_password("admin", "s3cret pass")  # inner spaces kept
        assert admin.is_admin
        assert [c.id for c in ConversationStore(database).list(admin)] == [made_locally.id]
        store = ConversationStore(database)
        conv = store.create(alice)
        turn = store.append_turn(
            alice, conv.id, "What is dropout?", {"answer": "Dropout [1].", "sources": []}
        )
        store.add_feedback(alice, conv.id, turn.answer_id, False, "too short")
    finally:
        database.dispose()

    out = tmp_path / "exports" / "feedback.jsonl"
    exported = run("feedback", "export", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["user"], r["liked"], r["comment"], r["question"]) for r in rows] == [
        ("alice", False, "too short", "What is dropout?")
    ]
    to_stdout = run("feedback", "export")
    assert json.loads(to_stdout.output.strip().splitlines()[-1])["comment"] == "too short"

    assert run("users", "remove", "alice", "--yes").exit_code == 0
    assert "alice" not in run("users", "list").output
    assert run("users", "remove", "alice", "--yes").exit_code == 2
