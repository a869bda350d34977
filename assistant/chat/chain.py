"""Conversational RAG: follow-up rewriting, retrieval, abstention, grounded streaming answers, citations.

One turn, top to bottom:
1. normalise the message (cut an over-long one, with a notice) and the history;
2. if the message refers back to the conversation, rewrite it into a standalone question with the
   LLM (prompts/rewrite.txt; chat/followup.py); a standalone message costs no LLM call;
3. retrieve for the standalone question (and, for follow-ups, for the previous question joined to
   this message, so a weak rewrite cannot lose the thread); abstain without calling the LLM when the
   best source is not relevant enough;
4. number the sources under a token budget and write the answer (chat/writing.py): by default the
   passages' own sentences closest to the question, quoted at once, then one sentence by the model
   (prompts/answer_quoted.txt); with `answer_style = "free"` the model's answer (prompts/answer.txt);
5. check what the model wrote for meaning against the sources before showing it (chat/entailment.py),
   leave out what no source states, settle the [n] markers and find each source's supporting span.

With a problem card (the user's setup, assistant/chat/problem.py), its text goes into the rewrite
and answer prompts (prompts/setup_rewrite.txt, setup_answer.txt) and the question joined to it is
searched too: it may add sources, never decides whether the documents cover the question. Without a
card nothing of this happens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from assistant.chat.answer import Answer, Source
from assistant.chat.citations import SupportChecker
from assistant.chat.coverage import Coverage
from assistant.chat.entailment import EntailmentChecker
from assistant.chat.followup import FollowUps
from assistant.chat.guard import fence, withhold
from assistant.chat.messages import Message, message_text, normalise_history, trim_history
from assistant.chat.problem import card_text
from assistant.chat.prompts import prompt
from assistant.chat.writing import Writing
from assistant.knowledge.retrieval import EmptyQueryError, SearchResult
from assistant.settings import Settings

__all__ = ["Answer", "RagChain", "Source", "message_text"]

if TYPE_CHECKING:
    from assistant.llm.engine import LLMEngine

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------------------------------


class RagChain(FollowUps, Writing):
    def __init__(self, assistant: Any, settings: Settings):
        self.assistant = assistant  # search() and embedder; the LLM is loaded on first real answer
        self.settings = settings
        self.checker = SupportChecker(assistant.embedder)
        self.coverage = Coverage(assistant.embedder, settings)
        self.entailment = EntailmentChecker(
            assistant.embedder.embed, self.checker.passage, self.ask_model, settings
        )

    @property
    def llm(self) -> LLMEngine:
        return self.assistant.llm

    # -- steps ---------------------------------------------------------------------------------
    def _cut_question(self, question: str, limit: int, count: Any, notices: list[str]) -> str:
        """Keep the head and tail of an over-long message (pasted logs end with the error), with a notice."""
        if count(question) <= limit:
            return question
        words = question.split()
        lo, hi = 1, len(words)
        while lo < hi:  # the most words, split between head and tail, that fit
            mid = (lo + hi + 1) // 2
            if count(_head_tail(words, mid)) <= limit:
                lo = mid
            else:
                hi = mid - 1
        notices.append(
            f"Your message was {len(question):,} characters; "
            f"only its beginning and end ({lo} words) were used."
        )
        return _head_tail(words, lo)

    def retrieve(self, queries: list[str]) -> list[SearchResult]:
        """Search each query; keep each unit's best, ordered by relevance."""
        best: dict[str, SearchResult] = {}
        for q in dict.fromkeys(q for q in queries if q.strip()):
            for r in self.assistant.search(q, k=max(self.settings.sources_k, 5) + 2):
                if r.unit_id not in best or r.relevance > best[r.unit_id].relevance:
                    best[r.unit_id] = r
        return sorted(best.values(), key=lambda r: -r.relevance)

    def retrieve_more(self, results: list[SearchResult], query: str) -> list[SearchResult]:
        """`results` with what `query` finds added (each unit keeps its best relevance)."""
        best = {r.unit_id: r for r in results}
        for r in self.retrieve([query]):
            if r.unit_id not in best or r.relevance > best[r.unit_id].relevance:
                best[r.unit_id] = r
        return sorted(best.values(), key=lambda r: -r.relevance)

    def select_sources(self, results: list[SearchResult], budget: int, k: int | None = None) -> list[Source]:
        """Number the relevant results under the token budget; a long answer contributes its best piece."""
        s = self.settings
        k = k or s.sources_k
        top = results[0].relevance
        keep = [r for r in results if r.relevance >= max(s.min_relevance, top - s.source_relevance_margin)]
        count = self.llm.count_tokens
        sources: list[Source] = []
        used = 0
        for r in keep[:k]:
            n = len(sources) + 1
            # Sources are data: sentences addressing the assistant are withheld, the tags fenced (guard.py).
            title = fence(withhold(r.title))
            # what the block costs besides its text (the title, document and file name: a long question
            # title is many tokens with a small vocabulary), plus the blank line between blocks
            frame = prompt(s, "source").format(
                n=n, doc_title=r.doc_title, title=title, text="", source=r.source
            )
            room = budget - used - count(frame) - 2
            share = max(budget // max(1, min(len(keep), k)), 96)
            text = r.text if count(r.text) <= share else r.passage
            if count(text) > room:
                if sources:
                    break
                text = _truncate_tokens(text, max(room, 16), count)
            text = fence(withhold(text))
            sources.append(Source(n, r.unit_id, r.source, r.doc_title, title, text, r.relevance, doc=r.doc))
            used += count(frame) + 2 + count(text)
        return sources

    def messages(
        self,
        question: str,
        history: list[Message],
        sources: list[Source],
        setup: str = "",
        retry: bool = False,
        template: str = "answer",
    ) -> list[Message]:
        """The answer prompt (prompts/`template`.txt); `retry` adds prompts/retry.txt, for a model that
        replied with source numbers alone."""
        block = "\n\n".join(
            prompt(self.settings, "source").format(
                n=s.n, doc_title=s.doc_title, title=s.title, text=s.text, source=s.source
            )
            for s in sources
        )
        user = prompt(self.settings, template).format(
            sources=block, question=question, setup=self._setup("setup_answer", setup)
        )
        if retry:
            user = f"{user.rstrip()}\n{prompt(self.settings, 'retry').format()}"
        past = trim_history(history, self.settings.history_max_tokens, self.llm.count_tokens)
        return [
            {"role": "system", "content": prompt(self.settings, "system").format()},
            *past,
            {"role": "user", "content": user},
        ]

    def search_covered(self, queries: list[str]) -> tuple[list[SearchResult], bool]:
        """(results, whether the documents cover the question): the first query is the standalone
        question, the others the follow-up joined to the previous one.

        A query that describes a known problem is searched in the documents' words too (chat/coverage.py).
        Those words match the corpus better than the user's do, so that search's relevances are scaled
        to rank its best unit just below the query's own best (`expansion_weight`): the concept passage
        rises into the first few sources without pushing out a unit the question names itself. The
        closest match and the query's own relevance decide coverage."""
        matches = [self.coverage.match(q) for q in queries]
        best_match = max(matches, key=lambda m: m.similarity)
        best_match.specific = matches[0].specific  # the question asked, not the turns it was joined to
        best: dict[str, SearchResult] = {}
        for q, m in zip(queries, matches, strict=True):
            own = self.retrieve([q])
            found = list(own)
            for extra in self.coverage.queries(q, m)[1:]:
                more = self.retrieve([extra])
                if own and more:
                    scale = own[0].relevance / more[0].relevance * self.settings.expansion_weight
                    found += [replace(r, relevance=r.relevance * scale) for r in more]
            for r in found:
                if r.unit_id not in best or r.relevance > best[r.unit_id].relevance:
                    best[r.unit_id] = r
        results = sorted(best.values(), key=lambda r: -r.relevance)
        return results, bool(results) and self.coverage.covered(best_match, results[0].relevance)

    def would_abstain(self, question: str) -> bool:
        """Whether a standalone question would get the not-covered message (no LLM involved)."""
        return not self.search_covered([question])[1]

    # -- the turn ------------------------------------------------------------------------------
    def stream(
        self,
        question: str,
        history: list[Message] | None = None,
        *,
        sources_k: int | None = None,
        stop: threading.Event | None = None,
        problem: dict[str, Any] | None = None,
        **gen: Any,
    ) -> Iterator[str | Answer]:
        """Text chunks of the answer as they are generated, then the final Answer.

        `problem`: the conversation's problem card (the user's setup), used by the rewrite, the search
        and the answer prompt (see the module docstring).
        `sources_k` and generation options (`max_new_tokens`, `temperature`) override the settings for
        this turn only; setting `stop` ends generation at the next decoding step.
        """
        t0 = time.perf_counter()
        question = message_text(question).strip()
        if not question:
            raise EmptyQueryError("the message is empty: ask a question about training a model")
        notices: list[str] = []
        question = self._cut_question(
            question, self.settings.question_max_tokens, self.assistant.embedder.count_tokens, notices
        )
        history = normalise_history(history)
        timings: dict[str, float] = {"rewrite_ms": 0.0}

        setup = card_text(problem, self.settings.problem_max_tokens, self.assistant.embedder.count_tokens)

        t = time.perf_counter()
        standalone, queries, follow_up = self.standalone_queries(question, history, stop, setup)
        if follow_up:
            timings["rewrite_ms"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        results, covered = self.search_covered(queries)
        if covered and setup:  # the setup may add sources ("which batch size?" with "6 GB GPU memory")
            results = self.retrieve_more(results, f"{standalone} {setup}")
        timings["retrieve_ms"] = (time.perf_counter() - t) * 1000
        if not covered:
            text = prompt(self.settings, "not_covered").format()
            timings["total_ms"] = (time.perf_counter() - t0) * 1000
            yield text
            yield Answer(text, standalone, True, notices=notices, rewritten=follow_up, timings=timings)
            return

        if stop is not None and stop.is_set():  # stopped before the answer began (e.g. while rewriting)
            timings["total_ms"] = (time.perf_counter() - t0) * 1000
            yield Answer(
                "", standalone, False, notices=[*notices, "Stopped."], rewritten=follow_up, timings=timings
            )
            return

        engine = self.llm
        window = engine.context_window
        reserve = min(gen.get("max_new_tokens") or self.settings.llm_max_new_tokens, window // 3)
        gen["max_new_tokens"] = reserve
        past = trim_history(history, self.settings.history_max_tokens, engine.count_tokens)
        fixed = engine.count_messages(self.messages(question, past, [], setup))
        if past and fixed + reserve + 160 > window:
            notices.append("The conversation is long: earlier turns were left out to make room for sources.")
            past = []
            fixed = engine.count_messages(self.messages(question, past, [], setup))
        if fixed + reserve + 160 > window:  # the message itself is too long for this model
            question = self._cut_question(
                question,
                max(32, window - reserve - 160 - (fixed - engine.count_tokens(question))),
                engine.count_tokens,
                notices,
            )
            fixed = engine.count_messages(self.messages(question, past, [], setup))
        budget = min(self.settings.context_max_tokens, window - reserve - fixed - 32)
        sources = self.select_sources(results, budget, sources_k)
        write = self.write_quoted if self.settings.answer_style == "quoted" else self.write_free
        answer = yield from write(engine, question, past, sources, setup, stop, gen, timings, t0)
        answer.standalone_question, answer.rewritten = standalone, follow_up
        answer.notices = [*notices, *answer.notices]
        answer.timings = {k: round(v, 1) for k, v in timings.items()}
        yield answer


def _head_tail(words: list[str], n: int) -> str:
    if n >= len(words):
        return " ".join(words)
    head = (n + 1) // 2
    return " ".join(words[:head]) + " … " + " ".join(words[len(words) - (n - head) :])


def _truncate_tokens(text: str, limit: int, count: Any) -> str:
    words = text.split()
    while words and count(" ".join(words)) > limit:
        words = words[: int(len(words) * 0.9)]
    return " ".join(words) + " …"
