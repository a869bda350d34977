"""`assistant users add|list|remove|passwd|key` and `assistant feedback export`: accounts and feedback
in the database (database_url, else data_dir/assistant.db)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from assistant.cli.common import app, console, err, friendly_errors, load_settings

users_app = typer.Typer(
    help="Accounts: with any account, logins and API keys are on (setting `auth`).", no_args_is_help=True
)
feedback_app = typer.Typer(help="Thumbs up/down given on answers.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(feedback_app, name="feedback")


@contextmanager
def _store() -> Iterator[tuple[Any, Any]]:
    """(settings, database); store errors print one line and exit 2 like every other known failure."""
    from sqlalchemy.exc import SQLAlchemyError

    from assistant.store import StoreError, open_database

    with friendly_errors():
        settings = load_settings()
        try:
            db = open_database(settings)
        except SQLAlchemyError as exc:
            raise RuntimeError(
                f"cannot open the database: {exc.__class__.__name__}: {exc.orig or exc}"
            ) from None
    try:
        yield settings, db
    except StoreError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    finally:
        db.dispose()


def _accounts(settings: Any, db: Any) -> Any:
    from assistant.store import Accounts

    return Accounts(db, settings)


def read_password(confirm: bool = True) -> str:
    """Asked twice, hidden, on a terminal; otherwise the first line of standard input (scripts, Docker:
    `printf '%s\\n' "$PW" | assistant users add admin --admin`)."""
    if sys.stdin.isatty():
        return typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Account name (letters, digits, _ . @ -).")],
    admin: Annotated[
        bool, typer.Option("--admin", help="May upload and remove documents, read feedback.")
    ] = False,
    take_local: Annotated[
        bool, typer.Option("--take-local", help="Give it the conversations made so far without login.")
    ] = False,
) -> None:
    """Create an account; the password is asked (or read from standard input)."""
    with _store() as (settings, db):
        password = read_password()
        accounts = _accounts(settings, db)
        accounts.add(name, password, admin=admin)
        role = "admin" if admin else "user"
        console.print(f"added {role} {name!r}; logins and API keys are now on (unless auth = off)")
        if take_local:
            moved = accounts.take_local(name)
            console.print(f"{moved} conversation(s) made without login now belong to {name!r}")


@users_app.command("list")
def users_list() -> None:
    """The accounts, their roles and how many API keys each has."""
    with _store() as (settings, db):
        accounts = _accounts(settings, db).list()
        if not accounts:
            console.print("no accounts: the app runs without login on a loopback host")
            return
        table = Table()
        for col in ("name", "role", "created", "API keys"):
            table.add_column(col)
        for a in accounts:
            table.add_row(a.name, a.role, a.created.strftime("%Y-%m-%d %H:%M"), str(a.api_keys))
        console.print(table)


@users_app.command("remove")
def users_remove(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove an account with its API keys, sessions and conversations."""
    with _store() as (settings, db):
        accounts = _accounts(settings, db)
        accounts.get(name)  # unknown name: say so before asking
        if not yes and sys.stdin.isatty():
            typer.confirm(f"Remove {name!r} and all its conversations?", abort=True)
        accounts.remove(name)
        console.print(f"removed {name!r}")


@users_app.command("passwd")
def users_passwd(name: str) -> None:
    """Set a new password (asked, or read from standard input); logs the account out everywhere:
    its browser sessions end and its API keys are revoked (make a new one with `users key`)."""
    with _store() as (settings, db):
        accounts = _accounts(settings, db)
        accounts.get(name)
        revoked = accounts.passwd(name, read_password())
        console.print(
            f"password of {name!r} changed; its browser sessions are logged out and its "
            f"{revoked} API key(s) revoked"
        )


@users_app.command("key")
def users_key(
    name: str,
    revoke: Annotated[bool, typer.Option("--revoke", help="Revoke all the account's keys instead.")] = False,
) -> None:
    """A new API key for the account, printed once as the last line (only its hash is kept)."""
    with _store() as (settings, db):
        accounts = _accounts(settings, db)
        if revoke:
            console.print(f"revoked {accounts.revoke_api_keys(name)} API key(s) of {name!r}")
            return
        key = accounts.new_api_key(name)
        console.print(f"new API key for {name!r} (shown once; store it now):")
        print(key, flush=True)  # plain print: no wrapping or markup, a script can take the last line


@feedback_app.command("export")
def feedback_export(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="JSONL file (default: standard output).")
    ] = None,
) -> None:
    """Every thumbs up/down with its question, answer, sources, comment and user, one JSON per line."""
    from assistant.store import ConversationStore

    with _store() as (_settings, db):
        store = ConversationStore(db)
        if out is None:
            store.export_feedback(sys.stdout)
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        with open(tmp, "w", encoding="utf-8") as f:
            n = store.export_feedback(f)
        tmp.replace(out)
        err.print(f"{n} feedback line(s) written to {out}")
