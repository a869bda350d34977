"""Errors as a user sees them: a plain sentence and the request id; the details (a database error, a
stack trace) go to the server log under that id, never to the client.

Handlers raise `gr.Error` for what a user can act on ("Type a question first"); anything else a
handler raises is caught here (`guard_handlers` wraps every event function of the app) and logged.
"""

from __future__ import annotations

import functools
import inspect
import logging
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from assistant.web.guard import REQUEST_ID

log = logging.getLogger("assistant.web")

UNEXPECTED = (
    "Something went wrong on the server (request {rid}); nothing was changed. If it happens again, "
    "the administrator can find the details in the server log under that id."
)


def request_id_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The id the guard gave the HTTP request behind a handler call (a new one if none)."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, gr.Request):
            headers = getattr(value, "headers", None) or {}
            if rid := headers.get(REQUEST_ID):
                return str(rid)
    return secrets.token_hex(6)


def plain_error(fn_name: str, rid: str) -> gr.Error:
    log.exception("request %s: %s failed", rid, fn_name)
    return gr.Error(UNEXPECTED.format(rid=rid))


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` with unexpected exceptions logged and replaced by a plain gr.Error (a generator stays
    a generator: Gradio streams it)."""
    name = getattr(fn, "__qualname__", repr(fn))
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception:
                raise plain_error(name, request_id_of(args, kwargs)) from None

        return stream

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception:
            raise plain_error(name, request_id_of(args, kwargs)) from None

    return call


def guard_handlers(demo: gr.Blocks) -> None:
    """Wrap every Python event function of the app (JavaScript-only events have none)."""
    for block_fn in demo.fns.values():
        fn = getattr(block_fn, "fn", None)
        if fn is not None and not inspect.iscoroutinefunction(fn) and not getattr(fn, "_guarded", False):
            wrapped = guarded(fn)
            wrapped._guarded = True  # type: ignore[attr-defined]
            block_fn.fn = wrapped
