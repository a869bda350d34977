"""`assistant ask`, `chat` and `serve`: answers in the terminal and the web app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from assistant.cli.common import (
    app,
    build_assistant,
    console,
    err,
    friendly_errors,
    load_settings,
)


def _stream_answer(a: Any, question: str, history: list[dict[str, Any]], show: bool = True) -> Any:
    """Print the answer as it streams, then its final form if citations were settled afterwards."""
    from assistant.chat.chain import Answer

    streamed = ""
    final = None
    for item in a.ask_stream(question, history):
        if isinstance(item, Answer):
            final = item
        elif show and isinstance(item, str):
            streamed += item
            console.print(item, end="", markup=False, highlight=False, soft_wrap=True)
    if show:
        console.print()
        if final is not None and final.answer.strip() != streamed.strip():
            console.print("[dim]with citations checked:[/]")
            console.print(final.answer, markup=False, highlight=False)
    return final


def _show_sources(ans: Any) -> None:
    for note in ans.notices:
        err.print(f"[yellow]note:[/] {note}")
    if ans.abstained:
        return
    for s in ans.sources:
        console.print(f"[bold][{s.n}][/] {s.title} [dim]({s.source}, relevance {s.score:.2f})[/]")
        if s.span:
            console.print(f"    [italic]“{s.span}”[/]", highlight=False)
    if ans.consulted:
        console.print(
            "[dim]also consulted: " + "; ".join(f"[{s.n}] {s.title}" for s in ans.consulted) + "[/]"
        )
    for u in ans.unsupported:
        console.print(f"[red]not supported by its source:[/] {u['sentence']}")
    t = ans.timings
    console.print(
        f"[dim]retrieval {t.get('retrieve_ms', 0):.0f} ms, rewrite {t.get('rewrite_ms', 0):.0f} ms, "
        f"first token {t.get('first_token_ms', 0):.0f} ms, {t.get('tokens_per_s', 0):.1f} tokens/s[/]"
    )


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question.")],
    history: Annotated[
        Path | None, typer.Option(help="JSON file: a list of {role, content} messages.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole Answer as JSON.")] = False,
) -> None:
    """Answer one question from the documents, streaming, then list the cited sources."""
    with friendly_errors():
        past = json.loads(history.read_text()) if history else []
        a = build_assistant(index=True)
        ans = _stream_answer(a, question, past, show=not as_json)
    if as_json:
        print(json.dumps(ans.to_dict(), indent=2, ensure_ascii=False))
    else:
        _show_sources(ans)


@app.command()
def chat() -> None:
    """A conversation in the terminal: follow-up questions keep their context."""
    with friendly_errors():
        a = build_assistant(index=True)
    console.print("[bold]Ask about a training problem[/] (empty line or Ctrl-D to quit)")
    history: list[dict[str, Any]] = []
    while True:
        try:
            question = console.input("[cyan]you> [/]").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not question:
            break
        with friendly_errors():
            ans = _stream_answer(a, question, history)
            _show_sources(ans)
            history += [{"role": "user", "content": question}, {"role": "assistant", "content": ans.answer}]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default: settings.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.port).")] = None,
    model: Annotated[
        str | None, typer.Option(help="LLM preset, folder or .gguf (default: llm_model).")
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="No login even off loopback: anyone who can reach the port gets full access "
            "(the page says so in red). Only behind your own gate.",
        ),
    ] = False,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            help="`text` or `json` (one JSON object a line, for log collectors); default: log_format.",
        ),
    ] = None,
) -> None:
    """Start the web app: indexes what changed, loads the model, serves the chat UI and the
    OpenAI-compatible API (/v1) on one port. Off loopback, logins are required: create an account
    first (`assistant users add NAME --admin`)."""
    from assistant.web.app import serve as run_app
    from assistant.web.requestlog import configure_logging

    overrides = {"host": host, "port": port, "llm_model": model, "log_format": log_format}
    with friendly_errors():
        if log_format not in (None, "text", "json"):
            raise ValueError(f"--log-format must be text or json, not {log_format!r}")
        settings = load_settings().model_copy(update={k: v for k, v in overrides.items() if v is not None})
        configure_logging(settings.log_format, requests=settings.log_requests)
        console.print(f"Starting on http://{settings.host}:{settings.port} (Ctrl-C to stop)…")
        run_app(settings, no_auth=no_auth)
