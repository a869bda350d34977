"""Messages and history as the chain reads them: [{role, content}, …] with plain-text content."""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]


def message_text(content: Any) -> str:
    """Gradio may hand message content as a list of parts; reduce it to its text."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, list | tuple):
        return " ".join(message_text(part) for part in content).strip()
    return "" if content is None else str(content)


def normalise_history(history: list[Message] | None) -> list[Message]:
    out = []
    for m in history or []:
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
