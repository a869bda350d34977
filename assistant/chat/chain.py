"""Conversational RAG: follow-up rewriting, retrieval, abstention, grounded streaming answers, citations.

One turn, top to bottom:
1. normalise the message (cut an over-long one, with a notice) and the history;
2. if the message refers back to the conversation, rewrite it into a standalone question with the
   LLM (prompts/rewrite.txt; chat/followup.py); a standalone message costs no LLM call;
3. retrieve for the standalone question (and, for follow-ups, for the previous question joined to
   this message, so a weak rewrite cannot lose the thread); abstain without calling the LLM when the
   best source is not relevant enough;
4. number the sources under a token budget and stream the answer (prompts/system.txt, answer.txt);
5. rewrite the model's [n] markers as they stream: unknown numbers dropped, the rest renumbered by
   first use (markers before the first word wait for it); a reply of source numbers alone is asked
   for once more (prompts/retry.txt); then check each sentence against the sources, settle its
   citations and find the supporting span.

With a problem card (the user's setup, assistant/chat/problem.py), its text goes into the rewrite
and answer prompts (prompts/setup_rewrite.txt, setup_answer.txt) and the question joined to it is
searched too: it may add sources, never decides whether the documents cover the question. Without a
card nothing of this happens.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.chat.citations import (
    LEADING_MARKER,
    MARKER,
    CitationRewriter,
    SupportChecker,
    cited_numbers,
    has_words,
    sentence_spans,
    strip_markers,
    with_marks,
)
from assistant.chat.followup import FollowUps
from assistant.chat.guard import fence, withhold
from assistant.chat.messages import Message, message_text, normalise_history, trim_history
from assistant.chat.problem import card_text
from assistant.chat.prompts import prompt
from assistant.knowledge.retrieval import EmptyQueryError, SearchResult
from assistant.llm.streaming import Waiting
from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.llm.engine import LLMEngine

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


@dataclass
class Source:
    n: int  # the number the answer cites it by
    unit_id: str
    source: str  # file
    doc_title: str
    title: str  # the question the passage answers
    text: str  # the passage the model was given
    score: float  # retrieval relevance
    span: str = ""  # the part of the passage that best supports the sentence citing it
    span_start: int = -1  # character offsets of the span in `text`
    span_end: int = -1
    support: float | None = None  # how well it supports the sentences citing it (0-1)


@dataclass
class Answer:
    answer: str
    standalone_question: str
    abstained: bool
    sources: list[Source] = field(default_factory=list)  # cited, numbered by first use
    consulted: list[Source] = field(default_factory=list)  # given to the model but not cited
    unsupported: list[dict[str, Any]] = field(default_factory=list)  # cited sentences their source lacks
    notices: list[str] = field(default_factory=list)
    rewritten: bool = False
    citations_added: bool = False  # the model wrote no marker; they were attributed afterwards
    corrected: int = 0  # markers re-pointed to the source that actually supports the sentence
    retried: bool = False  # the first reply was source numbers alone, so the model was asked again
    no_text: bool = False  # the model wrote nothing but markers (even when asked again)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------------------------------


class RagChain(FollowUps):
    def __init__(self, assistant: Any, settings: Settings):
        self.assistant = assistant  # search() and embedder; the LLM is loaded on first real answer
        self.settings = settings
        self.checker = SupportChecker(assistant.embedder)

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
            sources.append(Source(n, r.unit_id, r.source, r.doc_title, title, text, r.relevance))
            used += count(frame) + 2 + count(text)
        return sources

    def messages(
        self,
        question: str,
        history: list[Message],
        sources: list[Source],
        setup: str = "",
        retry: bool = False,
    ) -> list[Message]:
        """The answer prompt; `retry` adds prompts/retry.txt, for a model that replied with source
        numbers alone."""
        block = "\n\n".join(
            prompt(self.settings, "source").format(
                n=s.n, doc_title=s.doc_title, title=s.title, text=s.text, source=s.source
            )
            for s in sources
        )
        user = prompt(self.settings, "answer").format(
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

    def finalize(self, raw: str, sources: list[Source]) -> Answer:
        """Check every sentence against the sources and settle its citations.

        A source *supports* a sentence when their support (SupportChecker) reaches `support_threshold`.
        A marker stands when its source supports the sentence and trails the best source by at most
        `citation_margin`; otherwise the sentence is cited to the best source if that one supports it.
        An unmarked sentence gets the best source's marker if it supports it. A cited sentence that no
        source supports keeps the model's marker and is reported in `unsupported`. Markers are then
        numbered by first use.
        """
        tau, margin = self.settings.support_threshold, self.settings.citation_margin
        text = MARKER.sub(lambda m: " " + "".join(f"[{n}]" for n in re.findall(r"\d+", m.group(1))), raw)
        text = re.sub(r"(?m)^ \[", "[", text)
        text = LEADING_MARKER.sub(r"\2\3 [\1]\4", text.strip())
        spans = sentence_spans(text)
        plain = [strip_markers(text[a:b]) for a, b in spans]
        vecs = self.assistant.embedder.embed(plain) if plain else None
        answer = Answer(answer="", standalone_question="", abstained=False)
        shown: dict[int, int] = {}  # index into sources -> number shown
        best_for: dict[int, tuple[float, tuple[int, int]]] = {}
        model_cited = False
        pieces, last = [], 0
        for i, (a, b) in enumerate(spans):
            if not plain[i]:  # a stray marker on its own line claims nothing: drop it
                pieces.append(text[last:a])
                last = b
                continue
            claimed = [n - 1 for n in cited_numbers(text[a:b]) if 1 <= n <= len(sources)]
            model_cited |= bool(claimed)
            use: list[int] = []
            if len(plain[i].split()) >= 3 or claimed:
                checks = [self.checker.check(plain[i], src.text, vecs[i]) for src in sources]
                top = max(range(len(sources)), key=lambda k: checks[k][0])
                best = checks[top][0]
                use = [k for k in claimed if checks[k][0] >= max(tau, best - margin)]
                if not use and best >= tau:
                    use = [top]
                    answer.corrected += bool(claimed)
                elif not use and claimed:  # no source supports it: keep the claim visible, report it
                    use = claimed
                    answer.unsupported.append(
                        {"sentence": plain[i], "support": round(max(checks[k][0] for k in use), 3)}
                    )
                for k in use:
                    if k not in best_for or checks[k][0] > best_for[k][0]:
                        best_for[k] = checks[k]
            marks = "".join(f"[{shown.setdefault(k, len(shown) + 1)}]" for k in dict.fromkeys(use))
            pieces.append(text[last:a] + with_marks(plain[i], marks))
            last = b
        pieces.append(text[last:])
        answer.answer = "".join(pieces).strip()
        answer.no_text = not has_words(answer.answer)
        if not shown and sources:  # nothing clearly supported: still say which passage it drew on
            checks = [self.checker.check(answer.answer, src.text) for src in sources]
            k = max(range(len(sources)), key=lambda k: checks[k][0])
            shown[k], best_for[k] = 1, checks[k]
            if answer.no_text:  # say so plainly (prompts/no_text.txt) rather than show an empty answer
                answer.answer = prompt(self.settings, "no_text").format(title=sources[k].title).strip()
            else:
                answer.answer += f"\n\n(Drawn from [1]: {sources[k].title})"
        answer.citations_added = not model_cited
        for k, n in shown.items():
            support, (a, b) = best_for[k]
            src = sources[k]
            src.n, src.support = n, round(support, 3)
            src.span, src.span_start, src.span_end = src.text[a:b].strip(), a, b
        unused = [k for k in range(len(sources)) if k not in shown]
        for rank, k in enumerate(unused, start=len(shown) + 1):
            sources[k].n = rank
        answer.sources = sorted((sources[k] for k in shown), key=lambda x: x.n)
        answer.consulted = [sources[k] for k in unused]
        return answer

    def would_abstain(self, question: str) -> bool:
        """Whether a standalone question would get the not-covered message (no LLM involved)."""
        results = self.retrieve([question])
        return not results or results[0].relevance < self.settings.min_relevance

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
        results = self.retrieve(queries)
        covered = bool(results) and results[0].relevance >= self.settings.min_relevance
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
        messages = self.messages(question, past, sources, setup)
        rewriter = CitationRewriter(len(sources))  # live view; finalize() settles the citations
        raw, held, spoke = "", "", False  # spoke: the reply has words besides markers
        for attempt in range(2):
            generation = engine.stream(messages, stop=stop, **gen)
            for chunk in generation:
                if isinstance(chunk, Waiting):  # no place in the batch yet: the caller may say so
                    yield chunk
                    continue
                raw += chunk
                held += rewriter.feed(chunk)
                spoke = spoke or has_words(raw)
                if held and spoke:  # leading markers wait for the words they belong to
                    timings.setdefault("first_token_ms", (time.perf_counter() - t0) * 1000)
                    yield held
                    held = ""
            if spoke or generation.stats.cancelled or attempt:
                break
            # Source numbers and nothing else (a small model's habit with some questions): ask once
            # more, with the instruction to write sentences; the user never saw the bare numbers.
            log.info("the model answered with source numbers only (%r); asking once more", raw[:80])
            messages = self.messages(question, past, sources, setup, retry=True)
            rewriter, raw, held = CitationRewriter(len(sources)), "", ""
        tail = held + rewriter.flush()
        if tail and spoke:
            yield tail
        answer = self.finalize(raw, sources)
        stats = generation.stats
        timings.update(
            total_ms=(time.perf_counter() - t0) * 1000,
            tokens_per_s=stats.decode_tokens_per_s,
            llm_first_token_ms=stats.first_token_ms,
            queue_ms=stats.queue_ms,
            new_tokens=stats.new_tokens,
        )
        timings.setdefault("first_token_ms", timings["total_ms"])
        answer.standalone_question, answer.rewritten, answer.notices = standalone, follow_up, notices
        answer.retried = attempt > 0
        answer.timings = {k: round(v, 1) for k, v in timings.items()}
        if stats.cancelled:
            answer.notices.append("Stopped.")
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
