"""Switching the model every browser tab shares: admins only, and only to a model this server lists
(the dropdown's value is whatever a client sends, so the handler checks both)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from assistant.llm.models import list_models
from assistant.web.auth import NotAllowed, WebContext


class ModelSwitch:
    def __init__(self, assistant: Any, web: WebContext) -> None:
        self.assistant = assistant
        self.web = web
        s = assistant.settings
        presets = ["auto"] + [m["name"] for m in list_models(s) if m["available"]]
        self.choices = presets if s.llm_model in presets else [*presets, s.llm_model]

    def may_switch(self, request: gr.Request | None) -> bool:
        """Whether this visitor may change the model every session shares: admins only (the local
        user of an app without logins is one)."""
        try:
            return self.web.user(request).is_admin
        except NotAllowed:
            return False

    def switch(self, name: str, request: gr.Request) -> str:
        # Checked here, not only in the widget: a client can send any value to the server.
        if not self.may_switch(request):
            raise gr.Error("Only an administrator may switch the model.")
        if name not in self.choices:
            raise gr.Error(f"{name!r} is not one of the models this server offers: {', '.join(self.choices)}")
        try:
            engine = self.assistant.set_model(name)
        except (ValueError, RuntimeError, FileNotFoundError) as exc:
            raise gr.Error(str(exc)) from None
        return f"Model: **{engine.name}** on {engine.device} ({engine.dtype}). Shared by every open tab."
