"""Prompts are text files in prompts/, read at run time: editing one needs no restart."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from langchain_core.prompts import PromptTemplate

from assistant.settings import Settings


@lru_cache(maxsize=32)
def _read_prompt(path: Path, mtime: float) -> str:
    return path.read_text(encoding="utf-8").strip()


def prompt(settings: Settings, name: str) -> PromptTemplate:
    path = settings.prompts_dir / f"{name}.txt"
    if not path.exists():
        raise FileNotFoundError(f"prompt file {path} is missing")
    return PromptTemplate.from_template(_read_prompt(path, path.stat().st_mtime))
