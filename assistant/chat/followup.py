"""Follow-ups: whether a message leans on the conversation, and its standalone version.

A message that refers back in words (pronouns, "the second one", "what about …") or that is found
much better joined to the previous question than alone ("Which values should I try first?") is
rewritten into a standalone question by the LLM (prompts/rewrite.txt); a first turn and a clearly
standalone question cost no LLM call. The rewrite is checked: one that still refers back, echoes the
message or rambles is replaced by the previous question joined to this message.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from assistant.chat.messages import Message, trim_history
from assistant.chat.prompts import prompt
from assistant.knowledge.retrieval import tokenize

_FOLLOW_UP = re.compile(
    r"\b(it|its|this|that|these|those|they|them|their|such|one|ones|the (?:first|second|third|fourth|"
    r"last|former|latter|same|other|above|previous)|above|previous|earlier|you (?:said|mentioned|listed|"
    r"suggested|wrote)|what about|how about|which of|why not|why|more|else|also|instead|again)\b",
    re.IGNORECASE,
)
_STARTS_LIKE_FOLLOW_UP = re.compile(
    r"^\s*(and|but|so|also|or|then|ok|okay|what if|how come)\b", re.IGNORECASE
)


def refers_back(message: str) -> bool:
    """Whether a message leans on the conversation (pronouns, "the second one", "what about …")."""
    content = tokenize(message)
    return bool(_FOLLOW_UP.search(message) or _STARTS_LIKE_FOLLOW_UP.search(message) or len(content) <= 2)


class FollowUps:
    """The follow-up steps of RagChain (which provides `settings`, `assistant` and `llm`)."""

    settings: Any
    assistant: Any
    llm: Any

    def leans_on_history(self, question: str, history: list[Message]) -> str:
        """Why a message needs the conversation to be understood: "words" (it refers back: pronouns,
        "the second one"), "context" (joined to the previous question it is found much better than
        alone: "Which values should I try first?"), or "" (it stands alone). No LLM call: the
        second signal costs two searches, only when there is a conversation."""
        mode = self.settings.rewrite_follow_ups
        if not history or mode == "never":
            return ""
        if mode == "always" or refers_back(question):
            return "words"

        def best(query: str) -> float:
            results = self.assistant.search(query, k=1)
            return results[0].relevance if results else 0.0

        gain = best(self.join_previous(question, history)) - best(question)
        return "context" if gain > self.settings.follow_up_margin else ""

    def rewrite(
        self,
        question: str,
        history: list[Message],
        stop: threading.Event | None = None,
        echo_is_standalone: bool = False,
        setup: str = "",
    ) -> str:
        """A standalone version of a follow-up, by the LLM from recent turns (last answer included).
        Setting `stop` ends the rewrite at the next token (the turn's Stop reaches it too). With
        `echo_is_standalone`, a rewrite that repeats the message means the LLM found it standalone.
        `setup`: the problem card's text, for a message that depends on it ("which batch size?")."""
        recent = trim_history(history, self.settings.history_max_tokens, self.llm.count_tokens)
        transcript = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in recent)
        text = prompt(self.settings, "rewrite").format(
            history=transcript, question=question, setup=self._setup("setup_rewrite", setup)
        )
        out = self.llm.generate(
            [{"role": "user", "content": text}], max_new_tokens=64, temperature=0.0, stop=stop
        )
        line = next((ln.strip() for ln in out.strip().splitlines() if ln.strip()), "")
        line = re.sub(r"^(standalone question|question|rewritten)\s*:\s*", "", line, flags=re.I).strip(
            " \"'`*"
        )
        # A rewrite that still leans on the conversation ("what does the third one do?"), echoes the
        # message or rambles is no standalone question: the previous question plus this message is.
        if echo_is_standalone and line.strip(" ?.!").lower() == question.strip(" ?.!").lower():
            return question
        if (
            not line
            or len(line) > 4 * len(question) + 200
            or line.lower() == question.lower()
            or refers_back(line)
        ):
            return self.join_previous(question, history)
        return line

    def standalone_queries(
        self, question: str, history: list[Message], stop: threading.Event | None = None, setup: str = ""
    ) -> tuple[str, list[str], bool]:
        """(the question to search, the queries to search, whether the LLM rewrote it)."""
        why = self.leans_on_history(question, history)
        if not why:
            return question, [question], False
        kw = {"setup": setup} if setup else {}
        standalone = self.rewrite(question, history, stop, echo_is_standalone=why == "context", **kw)
        joined = self.join_previous(question, history)
        if standalone == question:  # the LLM found it standalone, but a small one also echoes follow-ups:
            return question, [question, joined], True  # search both, each unit keeps its best score
        return standalone, [standalone, joined], True

    @staticmethod
    def join_previous(question: str, history: list[Message]) -> str:
        previous = next((m["content"] for m in reversed(history) if m["role"] == "user"), "")
        return f"{previous.strip()} {question.strip()}".strip()

    def _setup(self, name: str, setup: str) -> str:
        """The card's block for a prompt's {setup} slot: "" without a card (the prompt is unchanged)."""
        return prompt(self.settings, name).format(card=setup) + "\n\n" if setup else ""
