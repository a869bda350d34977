"""Offline by construction: set before any Hugging Face, Chroma or Gradio module is imported.

Nothing in the package reaches the internet; the only exception is `assistant pull`, which the user
runs on purpose and which lifts these in its own subprocess.
"""

from __future__ import annotations

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",  # a missing hub model fails at once instead of retrying for ~40 s
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "ANONYMIZED_TELEMETRY": "False",  # Chroma's posthog telemetry
    "GRADIO_ANALYTICS_ENABLED": "False",  # Gradio's version check and analytics
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def apply_offline_env() -> None:
    os.environ.update(OFFLINE_ENV)


def offline_state() -> dict[str, str | None]:
    """The current value of every variable the offline guarantee rests on (for `assistant doctor`)."""
    return {key: os.environ.get(key) for key in OFFLINE_ENV}
