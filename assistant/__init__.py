"""Offline chat assistant for deep-learning training questions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.offline import apply_offline_env

apply_offline_env()  # before anything imports huggingface_hub, chromadb or gradio

if TYPE_CHECKING:
    from assistant.core import Assistant
    from assistant.settings import Settings

__all__ = ["Assistant", "Settings"]
__version__ = "0.1.0"


def __getattr__(name: str):  # lazy, so `assistant --help` does not import torch
    if name == "Assistant":
        from assistant.core import Assistant

        return Assistant
    if name == "Settings":
        from assistant.settings import Settings

        return Settings
    raise AttributeError(name)
