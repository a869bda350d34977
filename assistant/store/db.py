"""The database: one engine and session factory, built from settings in one place, schema upgraded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
WRITE = "assistant_write"  # execution option: this transaction reads then writes (see make_engine)


def database_url(settings: Any) -> str:
    """`database_url` if set, else the SQLite file under data_dir."""
    if settings.database_url:
        return str(settings.database_url)
    return f"sqlite:///{settings.database_file}"


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL (readers never block the writer), enforced foreign keys and a busy
    timeout so two writers wait for each other instead of failing."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # the driver's own BEGIN is not used: see _begin
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable at each checkpoint, never torn
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A writing transaction takes the write lock at once (waiting its turn), so what it read
            # cannot change before it writes; a deferred one would fail when another wrote meanwhile.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (Alembic, migrations shipped in the package)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


class Database:
    """The engine and its session factory. `session()` is one transaction: committed when the block
    ends, rolled back entirely when it raises. `session(write=True)` is for a transaction whose
    writes depend on what it read: it holds the write lock from its start (SQLite: BEGIN IMMEDIATE;
    PostgreSQL rows are locked with SELECT … FOR UPDATE by the caller)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        with self.sessions.begin() as s:
            if write:
                s.connection(execution_options={WRITE: True})
            yield s

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(settings: Any = None, url: str | None = None, migrate: bool = True) -> Database:
    """The database from settings (or an explicit URL), its schema upgraded to the current version."""
    engine = make_engine(url or database_url(settings))
    if migrate:
        upgrade(engine)
    return Database(engine)
