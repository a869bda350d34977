"""The LLM engine: one loaded chat model serving every session.

Generations run one at a time on a persistent worker thread (queued FIFO, never interleaved), stream
text as soon as each token decodes, and stop within one decoding step when cancelled. Which model
and how it is loaded is `models.py`.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from assistant.llm.models import ModelSource, load_model, quantize_plan, resolve_model
from assistant.llm.quantize import quantization_of
from assistant.settings import Settings

log = logging.getLogger(__name__)


class LLMOutOfMemoryError(RuntimeError):
    """The accelerator ran out of memory during one generation; the engine keeps serving."""


# --------------------------------------------------------------------------------------------------
# Streaming
# --------------------------------------------------------------------------------------------------


class TokenStreamer:
    """Streams text as soon as each token decodes (no waiting for a word boundary), and times tokens.

    Incremental detokenisation as in text-generation-inference: decode a small window before and
    after the newest token and emit the difference, holding back only an incomplete UTF-8 sequence.
    """

    def __init__(self, tokenizer: Any, stop: threading.Event):
        self.tokenizer = tokenizer
        self.stop = stop
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.ids: list[int] = []
        self.prefix = self.read = 0
        self.token_times: list[float] = []
        self._prompt_seen = False
        self._special = set(tokenizer.all_special_ids)

    # called by generate() on its thread
    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # the first call carries the prompt
            self._prompt_seen = True
            return
        self.token_times.append(time.perf_counter())
        self.ids.extend(int(t) for t in value.reshape(-1).tolist())
        if self.ids and self.ids[-1] in self._special:
            self.ids.pop()
            return
        before = self.tokenizer.decode(self.ids[self.prefix : self.read], skip_special_tokens=True)
        after = self.tokenizer.decode(self.ids[self.prefix :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.queue.put(after[len(before) :])
            self.prefix, self.read = self.read, len(self.ids)

    def end(self) -> None:
        self.queue.put(None)

    def __iter__(self) -> Iterator[str]:
        while (item := self.queue.get()) is not None:
            yield item


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    new_tokens: int = 0
    queue_ms: float = 0.0  # waiting for another session's generation to finish
    first_token_ms: float = 0.0  # from the start of this generation to its first streamed text
    decode_tokens_per_s: float = 0.0
    total_ms: float = 0.0
    cancelled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    """One streamed answer: iterate for text chunks; `.stats` afterwards; `.cancel()` from anywhere."""

    engine: LLMEngine
    input_ids: Any
    params: dict[str, Any]
    stats: GenerationStats = field(default_factory=GenerationStats)
    stop: threading.Event = field(default_factory=threading.Event)
    text: str = ""
    _error: BaseException | None = None
    _requested: float = 0.0
    _started: float = 0.0

    def cancel(self) -> None:
        self.stop.set()

    def __iter__(self) -> Iterator[str]:
        streamer = TokenStreamer(self.engine.tokenizer, self.stop)
        self._requested = time.perf_counter()
        self.stats.prompt_tokens = int(self.input_ids.shape[-1])
        # One worker thread runs every generation in turn (FIFO): sessions queue, outputs never mix,
        # and torch keeps one warm thread pool instead of building one per request.
        future = self.engine.worker.submit(self._run, streamer)
        try:
            for chunk in streamer:
                if not self.text:
                    self.stats.first_token_ms = (time.perf_counter() - self._started) * 1000
                self.text += chunk
                yield chunk
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
            self._finish(streamer, self._started)
            streamer.end()

    def _finish(self, streamer: TokenStreamer, start: float) -> None:
        times = streamer.token_times
        self.stats.new_tokens = len(times)
        self.stats.total_ms = (time.perf_counter() - start) * 1000
        self.stats.cancelled = self.stop.is_set()
        if len(times) > 1:
            self.stats.decode_tokens_per_s = (len(times) - 1) / (times[-1] - times[0])


class LLMEngine:
    """One loaded chat model plus its tokenizer, shared by every session."""

    def __init__(self, settings: Settings, *, model: Any = None, tokenizer: Any = None, name: str = ""):
        import torch

        self.settings = settings
        if settings.llm_threads:
            torch.set_num_threads(settings.llm_threads)
        start = time.perf_counter()
        if model is None:
            self.source = resolve_model(settings)
            log.warning("LLM: %s (%s)", self.source.name, self.source.reason)
            model, tokenizer, self.folder = load_model(self.source, settings)
        else:
            self.source = ModelSource("object", name or type(model).__name__, "", "handed in")
            self.folder = ""
        self.model, self.tokenizer = model, tokenizer
        self.load_seconds = time.perf_counter() - start
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm")
        self.device = str(next(model.parameters()).device)
        self.dtype = str(next(model.parameters()).dtype).replace("torch.", "")
        # Read from the model itself, so a handed-in model reports truthfully too.
        self.quantization = quantization_of(model)
        self.quantization_reason = quantize_plan(settings).reason if self.folder else "handed in"
        self.fast_path = settings.llm_fast_path == "on" or (
            settings.llm_fast_path == "auto" and self.device.startswith("cuda")
        )
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def context_window(self) -> int:
        """Tokens the model attends over (prompt + answer), from its config unless capped by settings."""
        own = int(getattr(self.model.config, "max_position_embeddings", 0) or 2048)
        cap = self.settings.llm_context_window
        return min(own, cap) if cap else own

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def encode_chat(self, messages: list[dict[str, str]]) -> Any:
        """Prompt ids for a conversation through the model's own chat template."""
        ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
        return ids.to(self.model.device)

    def count_messages(self, messages: list[dict[str, str]]) -> int:
        return int(self.encode_chat(messages).shape[-1])

    def generation_params(
        self, max_new_tokens: int | None = None, temperature: float | None = None, **extra: Any
    ) -> dict[str, Any]:
        s = self.settings
        temperature = s.llm_temperature if temperature is None else temperature
        params: dict[str, Any] = {
            "max_new_tokens": max_new_tokens or s.llm_max_new_tokens,
            "do_sample": temperature > 0,
            "repetition_penalty": s.llm_repetition_penalty,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if temperature > 0:
            params.update(temperature=temperature, top_p=s.llm_top_p)
        else:  # greedy: silence the model's own sampling defaults
            params.update(temperature=None, top_p=None, top_k=None)
        if self.fast_path:
            params["cache_implementation"] = "static"  # transformers then compiles the decode step
        return {**params, **extra}

    def stream(
        self,
        messages: list[dict[str, str]] | None = None,
        *,
        input_ids: Any = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: threading.Event | None = None,
        **extra: Any,
    ) -> Generation:
        """Start nothing yet: iterating the returned Generation queues, generates and streams."""
        ids = self.encode_chat(messages or []) if input_ids is None else input_ids
        room = self.context_window - int(ids.shape[-1])
        if room < 1:
            raise ValueError(
                f"the prompt ({ids.shape[-1]} tokens) fills the {self.context_window}-token window"
            )
        new = min(max_new_tokens or self.settings.llm_max_new_tokens, room)
        gen = Generation(self, ids, self.generation_params(new, temperature, **extra))
        if stop is not None:
            gen.stop = stop
        return gen

    def generate(self, messages: list[dict[str, str]], **kw: Any) -> str:
        gen = self.stream(messages, **kw)
        for _ in gen:
            pass
        return gen.text

    def warmup(self) -> None:
        """One short generation so the first user does not pay for lazy init (and compilation)."""
        self.generate([{"role": "user", "content": "Hi"}], max_new_tokens=4)

    def translate_error(self, exc: BaseException) -> BaseException:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower():
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            return LLMOutOfMemoryError(
                "the GPU ran out of memory while answering. Try fewer sources, a shorter question or a "
                "smaller max_new_tokens, or a smaller/4-bit model (llm_model, llm_load_in_4bit). The "
                "assistant is still running."
            )
        return exc

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "reason": self.source.reason,
            "folder": self.folder,
            "device": self.device,
            "dtype": self.dtype,
            "quantization": self.quantization,
            "quantization_reason": self.quantization_reason,
            "context_window": self.context_window,
            "fast_path": self.fast_path,
            "load_s": round(self.load_seconds, 2),
        }
