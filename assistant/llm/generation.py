"""One streamed answer of the engine: queued on the engine's worker thread (one at a time) or joined
to its continuous batch, its text streamed as each token decodes, stoppable from anywhere."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.llm.streaming import GenerationStats, TokenStreamer, Waiting

if TYPE_CHECKING:
    from assistant.llm.engine import LLMEngine


class _StopOnEvent:
    """A stopping criterion that ends generation at the next step once the event is set."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full(
            (input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device
        )


@dataclass
class Generation:
    """One streamed answer: iterate for text chunks (and `Waiting` notices while it has no place yet);
    `.stats` afterwards; `.cancel()` from anywhere."""

    engine: LLMEngine
    input_ids: Any
    params: dict[str, Any]
    stats: GenerationStats = field(default_factory=GenerationStats)
    stop: threading.Event = field(default_factory=threading.Event)
    text: str = ""
    _error: BaseException | None = None
    _requested: float = 0.0
    _started: float = 0.0
    _seq: int = -1

    def cancel(self) -> None:
        self.stop.set()

    def __iter__(self) -> Iterator[str | Waiting]:
        self._requested = time.perf_counter()
        self.stats.prompt_tokens = int(self.input_ids.shape[-1])
        streamer = TokenStreamer(self.engine.tokenizer, self.stop, self.engine.tokenizer_lock)
        if self.engine.batcher is not None:
            yield from self._batched(streamer)
        else:
            yield from self._serial(streamer)

    def _emit(self, chunk: str) -> str:
        if not self.text:
            self.stats.first_token_ms = (time.perf_counter() - self._requested) * 1000
        self.text += chunk
        return chunk

    # -- one at a time ------------------------------------------------------------------------------
    def _serial(self, streamer: TokenStreamer) -> Iterator[str | Waiting]:
        # One worker thread runs every generation in turn (FIFO): sessions queue, outputs never mix,
        # and torch keeps one warm thread pool instead of building one per request.
        self._seq = self.engine._enqueued()
        future = self.engine.worker.submit(self._run, streamer)
        told = 0
        try:
            for chunk in streamer:
                if chunk is None:  # heartbeat: say where this answer stands while it waits
                    ahead = self.engine._ahead(self._seq) if not self._started else 0
                    if ahead and ahead != told:
                        told = ahead
                        yield Waiting(ahead)
                    continue
                yield self._emit(chunk)
        except GeneratorExit:  # the consumer went away: the model stops within one step
            self.stop.set()
            raise
        future.result()  # the streamer has ended, so this returns at once
        if self._error:
            raise self._error

    def _run(self, streamer: TokenStreamer) -> None:
        import torch
        from transformers import StoppingCriteriaList

        self._started = time.perf_counter()
        self.stats.queue_ms = (self._started - self._requested) * 1000
        try:
            if self.stop.is_set():  # cancelled while queued
                return
            with torch.inference_mode():
                self.engine.model.generate(
                    input_ids=self.input_ids,
                    attention_mask=torch.ones_like(self.input_ids),
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([_StopOnEvent(self.stop)]),
                    **self.params,
                )
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer's thread
            self._error = self.engine.translate_error(exc)
        finally:
            self.engine._done()
            self.stats.finish(streamer.token_times, self._started, self.stop.is_set())
            streamer.end()

    # -- batched ------------------------------------------------------------------------------------
    def _batched(self, streamer: TokenStreamer) -> Iterator[str | Waiting]:
        batcher = self.engine.live_batcher()
        if self.stop.is_set():
            self.stats.cancelled = True
            return
        temperature = self.params.get("temperature") or 0.0
        new_tokens = int(self.params["max_new_tokens"])
        req = batcher.submit(
            self.input_ids[0].tolist(),
            max_new_tokens=new_tokens,
            temperature=float(temperature) if self.params.get("do_sample") else 0.0,
            ignore_eos=int(self.params.get("min_new_tokens") or 0) >= new_tokens,
        )
        told = 0
        try:
            for new in batcher.tokens(req, self.stop):
                if not new:  # idle poll: say where this answer stands while the batch is full
                    ahead = batcher.ahead(req)
                    if ahead and ahead != told:
                        told = ahead
                        yield Waiting(ahead)
                    continue
                if not self._started:
                    self._started = req.first_token or time.perf_counter()
                    self.stats.queue_ms = max(0.0, (self._started - self._requested) * 1000)
                if chunk := streamer.push(new):
                    yield self._emit(chunk)
        except GeneratorExit:
            self.stop.set()
            raise
        except Exception as exc:  # noqa: BLE001
            raise self.engine.translate_error(exc) from None
        finally:
            self.stats.finish(streamer.token_times, self._requested, self.stop.is_set())
