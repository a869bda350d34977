"""Continuous batching: many concurrent generations share one loaded model.

Wraps transformers' `ContinuousBatchingManager` (paged attention, requests join and leave the
batch at every step) with what a server needs around it:

- one dispatcher thread reads every output and routes it to its request's own queue (many
  `request_id_iter` consumers on the shared queue starve each other, transformers #42943);
- a dead generation thread fails every waiting request with a clear error instead of a silent
  hang (#48298);
- the KV cache is sized explicitly (`kv_tokens`), never "most of the free memory";
- per-request `max_new_tokens` and temperature; greedy is a temperature so small that sampling
  always picks the top token (the manager samples or not for the whole batch);
- cancel frees the request's cache blocks at once; a cancelled request ends immediately;
- a step whose requests are all greedy skips the logits processors and the softmax + multinomial
  over the whole vocabulary and takes the argmax (`greedy_steps`, batch_steps.py): 13% of a lone
  answer's step on CPU (py-spy), the gap between batched and one-at-a-time decoding;
- the generation thread runs in inference mode, as generate() does (`start_in_inference_mode`): under
  transformers' plain no_grad a lone answer decoded 7% slower than one at a time;
- each answer of a step attends only to its own keys (`packed_attention.py`), not the whole
  packed step under a block-diagonal mask;
- with `prefix_cache`, a prompt that starts like one already computed reuses those cache blocks.

While a manager runs, a plain `generate()` on the same model fails (#48735): when batching is on,
every generation of the engine (warm-up and benchmarks included) goes through here.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from assistant.llm.batch_steps import GREEDY_TEMPERATURE, greedy_steps, start_in_inference_mode
from assistant.llm.errors import LLMError
from assistant.llm.packed_attention import per_answer_attention

log = logging.getLogger(__name__)

_POLL_S = 0.05


class BatchingError(LLMError):
    """The batched generation loop failed or stopped; the request could not finish."""


@dataclass
class BatchRequest:
    """One generation in the batch: its id, its private output queue and its timings."""

    rid: str
    seq: int
    prompt_tokens: int
    submitted: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    finished: bool = False
    outputs: queue.Queue[Any] = field(default_factory=queue.Queue)


def batching_plan(settings: Any, model: Any, device: str) -> tuple[bool, str]:
    """Whether this engine batches, and why (shown by the log line and `assistant doctor`)."""
    asked = settings.llm_batching
    if asked == "off":
        return False, "llm_batching=off: one answer at a time"
    why_not = None
    if model is not None and not hasattr(model, "init_continuous_batching"):  # None: not loaded yet
        why_not = f"{type(model).__name__} has no continuous batching support"
    elif settings.llm_load_in_4bit:
        why_not = "bitsandbytes 4-bit weights are not supported by continuous batching"
    elif asked == "auto" and settings.llm_fast_path == "on":
        why_not = "llm_fast_path=on asks for the compiled one-at-a-time path"
    elif asked == "auto" and device.startswith("cuda") and settings.llm_fast_path == "auto":
        # Measured on an H200 (docs/benchmarks.md): a 7B model's compiled one-at-a-time path served
        # 1 to 8 users at 104-110 tokens/s in all, the batched loop at 33-77 (one user alone: 3x slower).
        why_not = "on a GPU the compiled one-at-a-time path serves more tokens/s (llm_batching=on to batch)"
    if why_not:
        if asked == "on":
            raise ValueError(f"llm_batching=on, but {why_not}")
        return False, f"auto: {why_not}"
    return True, f"{'auto' if asked == 'auto' else 'llm_batching=on'}: concurrent answers share each step"


def kv_budget_tokens(settings: Any, model: Any, device: str, bytes_per_token: int) -> int:
    """KV cache size in tokens: the setting, or batch × window; on a GPU never past its memory cap."""
    window = min(int(getattr(model.config, "max_position_embeddings", 0) or 4096), 4096)
    if settings.llm_context_window:
        window = min(window, settings.llm_context_window)
    tokens = settings.llm_kv_cache_tokens or settings.llm_batch_size * window
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        budget = free * 0.8
        if settings.llm_max_memory:
            from accelerate.utils import convert_file_size_to_int

            weights = sum(p.numel() * p.element_size() for p in model.parameters())
            budget = min(budget, convert_file_size_to_int(settings.llm_max_memory) - weights)
        tokens = min(tokens, max(0, int(budget // bytes_per_token)))
        if tokens < window:
            raise ValueError(
                f"the KV cache for batching would hold only {tokens} tokens within the GPU memory "
                "limit; raise llm_max_memory or set llm_batching=off"
            )
    return tokens


class ContinuousBatcher:
    """One `ContinuousBatchingManager` on a model plus the dispatcher that routes its outputs."""

    @classmethod
    def for_engine(cls, model: Any, tokenizer: Any, settings: Any, device: str) -> ContinuousBatcher:
        per_token = kv_bytes_per_token(model.config, next(model.parameters()).element_size())
        eos = getattr(model.generation_config, "eos_token_id", None) or tokenizer.eos_token_id
        return cls(
            model,
            eos_token_id=eos,
            pad_token_id=tokenizer.pad_token_id,
            batch_size=settings.llm_batch_size,
            kv_tokens=kv_budget_tokens(settings, model, device, per_token),
            max_new_tokens=settings.llm_max_new_tokens,
            # Top-p sorts the whole vocabulary (152k for Qwen) at every step for every answer, greedy
            # ones included (they sample at GREEDY_TEMPERATURE): 16% of a lone answer's time on CPU.
            # Only an app that samples by default (llm_temperature > 0) pays for it.
            top_p=settings.llm_top_p if settings.llm_temperature > 0 else 1.0,
            prefix_cache=settings.llm_prefix_cache,
        )

    def __init__(
        self,
        model: Any,
        *,
        eos_token_id: int | list[int] | None,
        pad_token_id: int | None,
        batch_size: int,
        kv_tokens: int,
        page_size: int = 64,
        max_new_tokens: int = 256,
        top_p: float = 1.0,
        prefix_cache: bool = False,
    ):
        from transformers import GenerationConfig
        from transformers.generation.configuration_utils import ContinuousBatchingConfig

        self.batch_size = batch_size
        self.page_size = page_size
        self.kv_tokens = max(page_size, kv_tokens // page_size * page_size)
        gen = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=True,
            # Not 1.0: a temperature processor must exist for per-request temperatures to apply.
            temperature=0.7,
            top_p=top_p if top_p < 1.0 else None,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
        )
        cfg = ContinuousBatchingConfig(
            page_size=page_size,
            num_blocks=self.kv_tokens // page_size,
            max_batch_tokens=max(page_size, min(self.kv_tokens, 2048)),
            max_requests_per_batch=batch_size,
            per_request_processors=True,
            allow_block_sharing=prefix_cache,
        )
        greedy_steps()
        per_answer_attention()
        self.manager = model.init_continuous_batching(generation_config=gen, continuous_batching_config=cfg)
        start_in_inference_mode(self.manager)
        self._lock = threading.Lock()
        self._requests: dict[str, BatchRequest] = {}
        self._seq = itertools.count()
        self._error: BaseException | None = None
        self._closing = threading.Event()
        self._dispatcher = threading.Thread(target=self._dispatch, name="llm-batch-dispatch", daemon=True)
        self._dispatcher.start()

    # -- submitting -------------------------------------------------------------------------------
    def submit(
        self, input_ids: list[int], *, max_new_tokens: int, temperature: float, ignore_eos: bool = False
    ) -> BatchRequest:
        """Queue one generation; `ignore_eos` forces exactly max_new_tokens (benchmarks)."""
        self.raise_if_dead()
        seq = next(self._seq)
        req = BatchRequest(rid=f"r{seq}", seq=seq, prompt_tokens=len(input_ids))
        with self._lock:
            self._requests[req.rid] = req
        rid = self.manager.add_request(
            list(input_ids),
            request_id=req.rid,
            max_new_tokens=max_new_tokens,
            streaming=True,
            temperature=float(temperature) if temperature > 0 else GREEDY_TEMPERATURE,
            **({"eos_token_id": -1} if ignore_eos else {}),
        )
        if rid is None:  # the manager refused it (stopping)
            self._forget(req)
            raise BatchingError("the generation loop is not accepting requests (it is stopping)")
        return req

    def cancel(self, req: BatchRequest) -> None:
        """End a request now; its cache blocks are freed by the generation loop at its next step."""
        if not req.finished:
            self.manager.cancel_request(req.rid)
            self._forget(req)

    def ahead(self, req: BatchRequest) -> int:
        """How many answers must finish before this one gets a place in the batch (0 once it has one)."""
        if req.first_token is not None or req.finished:
            return 0
        with self._lock:
            earlier = sum(1 for r in self._requests.values() if r.seq < req.seq)
        return max(0, earlier - (self.batch_size - 1))

    def active(self) -> int:
        with self._lock:
            return len(self._requests)

    # -- consuming --------------------------------------------------------------------------------
    def tokens(self, req: BatchRequest, stop: threading.Event | None = None) -> Iterator[list[int]]:
        """Yield each step's new token ids for this request until it finishes, is stopped or fails
        (an empty list now and then while it waits)."""
        seen = 0
        try:
            while True:
                if stop is not None and stop.is_set():
                    return
                try:
                    item = req.outputs.get(timeout=_POLL_S)
                except queue.Empty:
                    self.raise_if_dead()
                    yield []  # idle: lets the consumer check its place in the queue
                    continue
                if isinstance(item, BaseException):
                    raise item
                if item.error:
                    raise BatchingError(f"generation failed: {item.error}")
                new = list(item.generated_tokens[seen:])
                seen = len(item.generated_tokens)
                if new:
                    if req.first_token is None:
                        req.first_token = time.perf_counter()
                    yield new
                if item.is_finished():
                    return
        finally:
            self.cancel(req)  # no-op when it finished; frees the blocks when stopped or abandoned

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def dead(self) -> bool:
        """The generation loop has stopped, or is stopping, on its own (not closed by us)."""
        try:
            self.raise_if_dead()
        except BatchingError:
            return True
        status = self.manager.background_thread_status
        return not self._closing.is_set() and status.can_accept_new_requests() is not None

    def raise_if_dead(self) -> None:
        if self._error is not None:
            raise BatchingError(f"the batched generation loop stopped: {self._error}") from self._error
        fatal = getattr(self.manager.background_thread_status, "fatal_error", None)
        if fatal is not None or (not self.manager.is_running() and not self._closing.is_set()):
            self._fail_all(fatal or RuntimeError("the generation thread exited"))
            raise BatchingError(f"the batched generation loop stopped: {self._error}")

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until no request is in flight; False if some still are after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.active() and time.monotonic() < deadline:
            time.sleep(_POLL_S)
        return not self.active()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the loop (pending requests fail with a clear error) and free its cache."""
        self._closing.set()
        try:
            self.manager.stop(block=True, timeout=timeout, hard_stop=True)
        finally:
            self._fail_all(RuntimeError("the model was unloaded"))
            # it ends within one poll of `_closing`; a busy machine may take longer than a poll
            self._dispatcher.join(timeout=timeout)

    def _dispatch(self) -> None:
        while not self._closing.is_set():
            if not threading.main_thread().is_alive():
                # The interpreter is exiting without close() (a library user who never closed the
                # engine): transformers' loop thread is not a daemon and would keep the process alive
                # forever, so ask it to stop (there is no one left to answer). Only ask: stop() also
                # runs gc.collect() here, and a daemon thread freeing tensors while Python finalizes
                # aborts the process ("terminate called without an active exception"). The loop
                # thread, not a daemon, is joined by the interpreter and frees its own tensors.
                self._closing.set()
                self._request_hard_stop()
                return
            try:
                out = self.manager.get_result(timeout=_POLL_S)
            except Exception as exc:  # noqa: BLE001 - surfaced to every waiting request
                self._fail_all(exc)
                return
            if out is None:
                fatal = getattr(self.manager.background_thread_status, "fatal_error", None)
                if fatal is not None or (not self.manager.is_running() and not self._closing.is_set()):
                    self._fail_all(fatal or RuntimeError("the generation thread exited"))
                    return
                continue
            with self._lock:
                req = self._requests.get(out.request_id)
            if req is None:  # cancelled: drop its late outputs
                continue
            req.outputs.put(out)
            if out.is_finished():
                self._forget(req)

    def _request_hard_stop(self) -> None:
        """Signal the generation loop to end at its next step, without joining it or collecting."""
        status = self.manager.background_thread_status
        rank = getattr(getattr(self.manager, "distributed_helper", None), "global_rank", 0)
        try:
            status.request_stop(type(status).HARD_STOP, rank)
        except AttributeError:  # another transformers version: its own stop, without waiting
            self.manager.stop(block=False, hard_stop=True)

    def _forget(self, req: BatchRequest) -> None:
        req.finished = True
        with self._lock:
            self._requests.pop(req.rid, None)

    def _fail_all(self, exc: BaseException) -> None:
        with self._lock:
            pending, self._requests = list(self._requests.values()), {}
        if self._error is None:
            self._error = exc
            if pending or not self._closing.is_set():  # a deliberate close with nothing waiting is quiet
                log.error("batched generation stopped: %s", exc)
        for req in pending:
            req.finished = True
            req.outputs.put(BatchingError(f"the batched generation loop stopped: {exc}"))


def kv_bytes_per_token(config: Any, dtype_bytes: int) -> int:
    """Bytes of key + value cache one token takes across all layers."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    return 2 * text.num_hidden_layers * heads * head_dim * dtype_bytes
