"""`assistant config`, `doctor`, `models` and `pull`: what is installed and how it is set."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from assistant.cli.common import (
    app,
    build_assistant,
    console,
    err,
    friendly_errors,
    load_settings,
)
from assistant.offline import offline_state


@app.command("config")
def show_config() -> None:
    """Print the effective settings, where they may come from, and what each means."""
    from assistant.settings import config_file

    with friendly_errors():
        s = load_settings()
    path = config_file()
    console.print(f"config file: {path or '(none)'}; environment variables: ASSISTANT_<NAME>")
    table = Table()
    for col in ("setting", "value", "description"):
        table.add_column(col, overflow="fold")
    for name, value, desc in s.describe():
        table.add_row(name, str(value), desc)
    console.print(table)


@app.command()
def doctor() -> None:
    """Versions, device, model files and hash status, index statistics, offline state."""
    import importlib.metadata as md
    import platform

    rows: list[tuple[str, str]] = [("python", platform.python_version())]
    for pkg in (
        "torch",
        "transformers",
        "accelerate",
        "sentence-transformers",
        "chromadb",
        "langchain-core",
        "gradio",
    ):
        try:
            rows.append((pkg, md.version(pkg)))
        except md.PackageNotFoundError:
            rows.append((pkg, "not installed"))
    import torch

    rows.append(("cuda", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"))
    rows += [(k, str(v)) for k, v in offline_state().items()]
    ok = True
    try:
        from assistant.llm.batching import batching_plan
        from assistant.llm.models import resolve_model

        settings = load_settings()
        if settings.llm_url:
            rows += [
                (
                    "llm.remote",
                    f"{settings.llm_remote_model or '(the only model listed)'} at {settings.llm_url}",
                )
            ]
        else:
            source = resolve_model(settings)
            rows += [("llm.model", source.name), ("llm.source", source.kind), ("llm.why", source.reason)]
            use, why = batching_plan(settings, None, "cuda" if torch.cuda.is_available() else "cpu")
            rows.append(("llm.batching", f"{'on' if use else 'off'} ({why})"))
            rows += _llm_precision_rows(settings)
    except Exception as exc:  # noqa: BLE001
        ok = False
        rows.append(("llm problem", str(exc)))
    try:
        a = build_assistant()
        rows += [(f"embedder.{k}", str(v)) for k, v in a.embedder.describe().items()]
        rows += [(f"index.{k}", str(v)) for k, v in a.stats().items()]
    except Exception as exc:  # noqa: BLE001 - doctor reports, it does not crash
        ok = False
        rows.append(("problem", f"{type(exc).__name__}: {exc}"))
    table = Table(show_header=False)
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    if not ok:
        raise typer.Exit(1)


def _llm_precision_rows(settings: Any) -> list[tuple[str, str]]:
    """The dtype and quantization the LLM will load with, decided without loading it."""
    from assistant.knowledge.embedder import resolve_device
    from assistant.llm.models import pick_dtype, quantize_plan

    device = resolve_device(settings.llm_device)
    plan = quantize_plan(settings)
    dtype = plan.dtype or str(pick_dtype(settings.llm_dtype, device)).replace("torch.", "")
    if settings.llm_load_in_4bit:
        return [("llm.dtype", f"{dtype} compute"), ("llm.quantize", "4-bit (llm_load_in_4bit)")]
    return [("llm.dtype", dtype), ("llm.quantize", plan.method), ("llm.quantize.why", plan.reason)]


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """LLM presets: whether each is on disk, its size and where it would come from."""
    from assistant.llm.models import list_models

    rows = list_models(load_settings())
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table()
    for col in ("preset", "available", "size", "source", "note"):
        table.add_column(col, overflow="fold")
    for r in rows:
        size = f"{'~' if r['estimated'] else ''}{r['size_gb']} GB"
        table.add_row(r["name"], "yes" if r["available"] else "no", size, r["source"], r["note"])
    console.print(table)
    console.print("Set one with ASSISTANT_LLM_MODEL=<preset>; `auto` picks for you (see `assistant doctor`).")


@app.command()
def pull(name: Annotated[str, typer.Argument(help="A preset from `assistant models`.")]) -> None:
    """Download a preset into the Hugging Face cache (needs internet; nothing else ever downloads)."""
    from assistant.llm.models import pull as pull_model

    with friendly_errors():
        try:
            path = pull_model(name)
        except ConnectionError as exc:
            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from None
    console.print(f"{name} is in the Hugging Face cache: {path}")
