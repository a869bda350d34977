"""Messages and history as the chain reads them: [{role, content}, …] with plain-text content."""

from __future__ import annotations

import re
from typing import Any

Message = dict[str, Any]
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # half of a UTF-16 pair: no character, unencodable


class HistoryError(ValueError):
    """A history that is not a list of {role, content} messages; the message says what is expected."""


def plain(text: str) -> str:
    """Text every later step can encode: a lone surrogate (JSON allows `"\\ud800"`) becomes U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def message_text(content: Any) -> str:
    """Gradio may hand message content as a list of parts; reduce it to its text."""
    if isinstance(content, str):
        return plain(content)
    if isinstance(content, dict):
        return plain(str(content.get("text", "")))
    if isinstance(content, list | tuple):
        return " ".join(message_text(part) for part in content).strip()
    return "" if content is None else plain(str(content))


def too_long(text: str, max_kb: int) -> str | None:
    """Why a message is refused for its size (setting `message_max_kb`), or None."""
    size = len(text.encode("utf-8", "replace"))
    if size <= max_kb * 1024:
        return None
    return (
        f"The message is {size / 1024:,.0f} KB, over the {max_kb} KB limit (message_max_kb): shorten it, "
        "or attach a long training log as a file."
    )


def checked_history(history: Any) -> list[Message]:
    """A history from a client, checked: a list of {role, content} objects (HistoryError otherwise)."""
    if history is None:
        return []
    if not isinstance(history, list):
        raise HistoryError("the history must be a JSON list of {role, content} messages")
    for i, m in enumerate(history):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise HistoryError(f"history[{i}] must be an object with a `role` and a `content`")
    return history


def normalise_history(history: list[Message] | None) -> list[Message]:
    out = []
    for m in history or []:
        if not isinstance(m, dict):
            continue
        role, text = m.get("role"), message_text(m.get("content")).strip()
        if role in {"user", "assistant"} and text:
            out.append({"role": role, "content": text})
    return out


def trim_history(history: list[Message], max_tokens: int, count: Any) -> list[Message]:
    """The most recent turns that fit in max_tokens (an over-long latest turn is cut, not dropped)."""
    kept: list[Message] = []
    used = 0
    for m in reversed(history):
        n = count(m["content"]) + 4
        if used + n > max_tokens:
            room = max_tokens - used - 4
            if not kept and room > 32:  # keep the tail of the most recent answer at least
                words = m["content"].split()
                while words and count(" ".join(words)) > room:
                    words = words[len(words) // 8 + 1 :]
                kept.append({"role": m["role"], "content": "… " + " ".join(words)})
            break
        kept.append(m)
        used += n
    return kept[::-1]
