"""Writing the answer from its sources, in one of two styles (chat/compose.py says why two), and
checking what the model wrote before anyone sees it.

- `write_quoted` (the default): the passages' own sentences closest to the question, quoted and
  cited at once, then one sentence by the model that relates them to the question, shown only if its
  source states it;
- `write_free`: the model writes the answer; each sentence is held until it is complete and checked,
  then shown, or left out when no source states it.

Either way `finalize` settles the [n] markers of what is shown, and `Answer.left_out` lists what was
not (the UI, the API, the CLI and the export all say "N sentences … were left out").
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Generator
from typing import Any

from assistant.chat.answer import Answer, Source
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
from assistant.chat.compose import pick_quotes, quoted_text
from assistant.chat.entailment import EntailmentChecker, Verdict
from assistant.chat.guard import fence, unwrap, withhold
from assistant.chat.messages import Message
from assistant.chat.prompts import prompt
from assistant.llm.streaming import Waiting

log = logging.getLogger(__name__)

Written = Generator[Any, None, Answer]  # yields text chunks (and Waiting), returns the Answer
# Yielded for each token the model writes while its text is held back (until checked): nothing to
# show, but a point where a consumer whose client went away can close the stream, which stops the
# model at its next step (a web framework cancels a generator only when it yields).
HELD = ""


def left_out_notice(count: int) -> str:
    if count == 1:
        return "1 sentence the model wrote was left out: no source states it."
    return f"{count} sentences the model wrote were left out: no source states them."


class Writing:
    """The writing steps of RagChain (which provides `settings`, `assistant`, `llm`, `checker`,
    `coverage` and `messages`)."""

    settings: Any
    assistant: Any
    checker: SupportChecker
    coverage: Any
    llm: Any
    entailment: EntailmentChecker
    messages: Any

    # -- the check ----------------------------------------------------------------------------
    def ask_model(self, pairs: list[tuple[str, str]]) -> list[float] | None:
        """The LLM's P(yes) that each passage states its sentence (prompts/entail.txt), or None when the
        check reads the passage alone (`entail_llm` off, or a server without logprobs)."""
        if not self.settings.entail_llm:
            return None
        ask = getattr(self.llm, "yes_probabilities", None)
        if ask is None:
            return None
        template = prompt(self.settings, "entail")
        return ask(
            [
                [{"role": "user", "content": template.format(passage=fence(withhold(p)), sentence=s)}]
                for s, p in pairs
            ]
        )

    def stated_by(
        self, sentence: str, sources: list[Source], first: list[int], others: list[int] | None = None
    ) -> tuple[int, Verdict] | None:
        """The source (index) that states `sentence`: those in `first` (its citations) are tried, then
        `others` (all the rest when None); None when none does."""
        rest = [k for k in (range(len(sources)) if others is None else others) if k not in first]
        for group in (first, rest):
            if not group:
                continue
            verdicts = self.entailment.score([(sentence, sources[k].text) for k in group])
            k, v = max(zip(group, verdicts, strict=True), key=lambda kv: kv[1].probability)
            if v.stated:
                return k, v
        return None

    # -- quoted --------------------------------------------------------------------------------
    def write_quoted(
        self,
        engine: Any,
        question: str,
        past: list[Message],
        sources: list[Source],
        setup: str,
        stop: threading.Event | None,
        gen: dict[str, Any],
        timings: dict[str, float],
        t0: float,
    ) -> Written:
        s = self.settings
        wording = [question, *self.coverage.wording(self.coverage.match(question))]
        quotes = pick_quotes(
            self.assistant.embedder.embed(wording),
            sources,
            self.assistant.embedder.embed,
            count=s.quote_count,
            margin=s.quote_margin,
        )
        number: dict[int, int] = {}  # index into sources -> number shown
        text = quoted_text(quotes, sources, prompt(s, "quote_heading"), number)
        timings["first_token_ms"] = (time.perf_counter() - t0) * 1000
        yield text
        answer = Answer(answer="", standalone_question="", abstained=False)

        # the model's sentence, shown only when a source states it
        messages = self.messages(question, past, sources, setup, template="answer_quoted")
        generation = engine.stream(messages, stop=stop, **{**gen, "max_new_tokens": s.quoted_sentence_tokens})
        raw = ""
        for chunk in generation:
            if isinstance(chunk, Waiting):
                yield chunk
                continue
            raw += chunk
            yield HELD
        t = time.perf_counter()
        sentence, claimed = first_sentence(unwrap(raw), len(sources))
        tail = ""
        if sentence and not generation.stats.cancelled:
            # its citation, or else the sources quoted above it
            found = self.stated_by(sentence, sources, claimed, others=list(number))
            if found is None:
                answer.left_out.append({"sentence": sentence, "cited": [k + 1 for k in claimed]})
            else:
                k, verdict = found
                n = number.setdefault(k, len(number) + 1)
                tail = "\n\n" + with_marks(sentence, f"[{n}]")
                answer.checked = 1
                yield tail
        timings["check_ms"] = (time.perf_counter() - t) * 1000
        answer.answer = (text + tail).strip()
        spans: dict[int, tuple[int, int]] = {}
        for q in quotes:
            spans.setdefault(q.k, (q.start, q.end))
        for k, n in number.items():
            src = sources[k]
            a, b = spans.get(k) or self.checker.check(sentence, src.text)[1]
            src.n, src.support = n, 1.0 if k in spans else None
            src.span, src.span_start, src.span_end = src.text[a:b].strip(), a, b
        self._number_the_rest(answer, sources, number)
        self._close(answer, generation, timings, t0)
        return answer

    # -- free ----------------------------------------------------------------------------------
    def write_free(
        self,
        engine: Any,
        question: str,
        past: list[Message],
        sources: list[Source],
        setup: str,
        stop: threading.Event | None,
        gen: dict[str, Any],
        timings: dict[str, float],
        t0: float,
    ) -> Written:
        messages = self.messages(question, past, sources, setup)
        for attempt in range(2):
            gate = SentenceGate(len(sources), lambda plain, piece: self._stated_free(plain, piece, sources))
            generation = engine.stream(messages, stop=stop, **gen)
            for chunk in generation:
                if isinstance(chunk, Waiting):  # no place in the batch yet: the caller may say so
                    yield chunk
                    continue
                shown_now = gate.feed(chunk)
                for shown in shown_now:
                    timings.setdefault("first_token_ms", (time.perf_counter() - t0) * 1000)
                    yield shown
                if not shown_now:
                    yield HELD
            for shown in gate.finish():
                timings.setdefault("first_token_ms", (time.perf_counter() - t0) * 1000)
                yield shown
            if has_words(gate.raw) or generation.stats.cancelled or attempt:
                break
            # Source numbers and nothing else (a small model's habit with some questions): ask once
            # more, with the instruction to write sentences; the user never saw the bare numbers.
            log.info("the model answered with source numbers only (%r); asking once more", gate.raw[:80])
            messages = self.messages(question, past, sources, setup, retry=True)
        timings["check_ms"] = gate.check_ms
        if gate.left_out and not has_words(strip_markers(gate.kept)):
            # the model wrote sentences, and no source states any of them: say so, never show them
            answer = Answer(
                answer=prompt(self.settings, "none_stated").format().strip(),
                standalone_question="",
                abstained=False,
            )
            self._number_the_rest(answer, sources, {})
        else:
            answer = self.finalize(gate.kept, sources)
        answer.left_out, answer.checked = gate.left_out, gate.checked
        answer.retried = attempt > 0
        self._close(answer, generation, timings, t0)
        return answer

    def _stated_free(self, plain: str, piece: str, sources: list[Source]) -> bool:
        claimed = [n - 1 for n in cited_numbers(piece) if 1 <= n <= len(sources)]
        return self.stated_by(plain, sources, claimed) is not None

    # -- both ----------------------------------------------------------------------------------
    @staticmethod
    def _number_the_rest(answer: Answer, sources: list[Source], shown: dict[int, int]) -> None:
        unused = [k for k in range(len(sources)) if k not in shown]
        for rank, k in enumerate(unused, start=len(shown) + 1):
            sources[k].n = rank
        answer.sources = sorted((sources[k] for k in shown), key=lambda x: x.n)
        answer.consulted = [sources[k] for k in unused]

    @staticmethod
    def _close(answer: Answer, generation: Any, timings: dict[str, float], t0: float) -> None:
        stats = generation.stats
        timings.update(
            total_ms=(time.perf_counter() - t0) * 1000,
            tokens_per_s=stats.decode_tokens_per_s,
            llm_first_token_ms=stats.first_token_ms,
            queue_ms=stats.queue_ms,
            new_tokens=stats.new_tokens,
        )
        timings.setdefault("first_token_ms", timings["total_ms"])
        if answer.left_out:
            answer.notices.append(left_out_notice(len(answer.left_out)))
        if stats.cancelled:
            answer.notices.append("Stopped.")

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
        self._number_the_rest(answer, sources, shown)
        return answer


class SentenceGate:
    """Holds the model's text until a sentence is complete, then lets it through (markers renumbered
    for display) if `stated(plain, piece)`, else records it in `left_out`. A sentence is complete once
    the next one begins, or at the end."""

    def __init__(self, n_sources: int, stated: Any):
        self.rewriter = CitationRewriter(n_sources)  # the live view; finalize() settles the citations
        self.stated = stated
        self.raw = ""  # everything the model wrote
        self.kept = ""  # what was let through, as the model wrote it
        self.done = 0  # characters of raw already judged
        self.left_out: list[dict[str, Any]] = []
        self.checked = 0  # sentences checked and let through
        self.check_ms = 0.0

    def feed(self, chunk: str) -> list[str]:
        self.raw += chunk
        return self._judge(sentence_spans(self.raw[self.done :])[:-1])

    def finish(self) -> list[str]:
        shown = self._judge(sentence_spans(self.raw[self.done :]))
        tail = self.rewriter.flush()
        return [*shown, tail] if has_words(tail) else shown

    def _judge(self, spans: list[tuple[int, int]]) -> list[str]:
        out: list[str] = []
        base = self.done
        for a, b in spans:
            piece, whole = unwrap(self.raw[base + a : base + b]), unwrap(self.raw[self.done : base + b])
            plain = strip_markers(piece)
            t = time.perf_counter()
            # a stray marker or a two-word lead-in ("In short:") claims nothing to check
            claims = bool(plain) and len(plain.split()) >= 3
            keep = not claims or self.stated(plain, piece)
            self.checked += claims and keep
            self.check_ms += (time.perf_counter() - t) * 1000
            if keep:
                self.kept += whole
                shown = self.rewriter.feed(whole)
                if has_words(shown):
                    out.append(shown)
            else:
                self.left_out.append({"sentence": plain, "cited": cited_numbers(piece)})
            self.done = base + b
        return out


def first_sentence(raw: str, n_sources: int) -> tuple[str, list[int]]:
    """The first sentence the model wrote, without markers, and the sources (indices) it cites."""
    text = LEADING_MARKER.sub(r"\2\3 [\1]\4", raw.strip())
    spans = [(a, b) for a, b in sentence_spans(text) if has_words(text[a:b])]
    if not spans:
        return "", []
    piece = text[spans[0][0] : spans[0][1]]
    claimed = [
        n - 1
        for n in cited_numbers(
            MARKER.sub(lambda m: "".join(f"[{x}]" for x in re.findall(r"\d+", m.group(1))), piece)
        )
        if 1 <= n <= n_sources
    ]
    sentence = strip_markers(MARKER.sub("", piece)).strip(" -*")
    return sentence, list(dict.fromkeys(claimed))
