"""The LLM engine: one loaded chat model serving every session.

Two ways to share it. Batched (`llm_batching`, see `batching.py`): concurrent answers join one
continuously batched loop and advance together, step by step. One at a time: a persistent worker
thread runs generations in turn (FIFO, never interleaved). Either way text streams as soon as each
token decodes, a queued answer says how many are ahead of it, and Stop ends it within one decoding
step. Which model and how it is loaded is `models.py`.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from assistant.llm.batching import ContinuousBatcher, batching_plan
from assistant.llm.errors import LLMError, LLMOutOfMemoryError
from assistant.llm.generation import Generation
from assistant.llm.models import ModelSource, load_model, quantize_plan, resolve_model
from assistant.llm.quantize import quantization_of
from assistant.settings import Settings

log = logging.getLogger(__name__)


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
        self.model, self.tokenizer, self.config = model, tokenizer, model.config
        self.closed = False
        self.load_seconds = time.perf_counter() - start
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm")
        self.device = str(next(model.parameters()).device)
        self.dtype = str(next(model.parameters()).dtype).replace("torch.", "")
        # Read from the model itself, so a handed-in model reports truthfully too.
        self.quantization = quantization_of(model)
        self.quantization_reason = quantize_plan(settings).reason if self.folder else "handed in"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._serial_lock = threading.Lock()
        self._serial_enqueued = self._serial_done = 0
        self.batcher: ContinuousBatcher | None = None
        self._batcher_lock = threading.Lock()
        use, self.batching_reason = batching_plan(settings, model, self.device)
        if use:
            try:
                self.batcher = ContinuousBatcher.for_engine(model, tokenizer, settings, self.device)
            except Exception as exc:  # noqa: BLE001 - fall back to one at a time, and say why
                if settings.llm_batching == "on":
                    raise
                self.batching_reason = f"off: continuous batching failed to start ({exc})"
        self.batching = "on" if self.batcher is not None else "off"
        log.warning("LLM batching %s (%s)", self.batching, self.batching_reason)
        # The static-cache + compiled decode fast path is for one-at-a-time generate() only.
        self.fast_path = self.batcher is None and (
            settings.llm_fast_path == "on"
            or (settings.llm_fast_path == "auto" and self.device.startswith("cuda"))
        )
        # One tokenizer serves every session and the generation thread. A fast tokenizer's settings
        # are shared mutable state (tokenizers#537, "Already borrowed"), so encoding and decoding take
        # this lock; counting uses a private copy that is set once and never changed, so it needs none.
        self.tokenizer_lock = threading.Lock()
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        self._counter = None
        if backend is not None:
            from tokenizers import Tokenizer

            self._counter = Tokenizer.from_str(backend.to_str())
            self._counter.no_truncation()
            self._counter.no_padding()

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def context_window(self) -> int:
        """Tokens the model attends over (prompt + answer), from its config unless capped by settings."""
        own = int(getattr(self.config, "max_position_embeddings", 0) or 2048)
        cap = self.settings.llm_context_window
        return min(own, cap) if cap else own

    def count_tokens(self, text: str) -> int:
        """Tokens `text` makes (no special tokens). Safe from any number of threads."""
        if self._counter is not None:
            return len(self._counter.encode(text, add_special_tokens=False).ids)
        with self.tokenizer_lock:
            return len(self.tokenizer.encode(text, add_special_tokens=False))

    def encode_chat(self, messages: list[dict[str, str]]) -> Any:
        """Prompt ids for a conversation through the model's own chat template."""
        with self.tokenizer_lock:
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
        if self.closed:
            raise RuntimeError(f"the model {self.name} was unloaded (another model was switched in)")
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

    def yes_probabilities(self, prompts: list[list[dict[str, str]]], batch: int = 8) -> list[float]:
        """For each chat prompt, P(yes) / (P(yes) + P(no)) of the reply's first token: a yes/no question
        answered by one forward pass over the batch (left-padded), no generation."""
        import torch

        yes, no = answer_token_ids(self.tokenizer)
        out: list[float] = []
        for i in range(0, len(prompts), batch):
            with self.tokenizer_lock:
                texts = [
                    self.tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
                    for p in prompts[i : i + batch]
                ]
                side = self.tokenizer.padding_side
                self.tokenizer.padding_side = "left"
                try:
                    enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
                finally:
                    self.tokenizer.padding_side = side
            ids, mask = enc["input_ids"].to(self.model.device), enc["attention_mask"].to(self.model.device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1]
            logp = torch.log_softmax(logits.float(), dim=-1)
            p_yes, p_no = logp[:, yes].logsumexp(-1), logp[:, no].logsumexp(-1)
            out += torch.sigmoid(p_yes - p_no).tolist()
        return out

    def _enqueued(self) -> int:
        with self._serial_lock:
            self._serial_enqueued += 1
            return self._serial_enqueued - 1

    def _done(self) -> None:
        with self._serial_lock:
            self._serial_done += 1

    def _ahead(self, seq: int) -> int:
        """One at a time: answers queued before this one and not finished (FIFO, so they run first)."""
        with self._serial_lock:
            return max(0, seq - self._serial_done)

    def live_batcher(self) -> ContinuousBatcher:
        """The batch loop, started again if it died: the answers it held have failed with a clear
        error, and the next one must not fail too (the app keeps serving)."""
        with self._batcher_lock:
            batcher = self.batcher
            if batcher is None:
                raise LLMError("this engine does not batch (llm_batching=off)")
            if batcher.dead and not self.closed:
                log.error("the batched generation loop had stopped; starting a new one")
                try:
                    batcher.close(timeout=5)
                except Exception:  # noqa: BLE001 - the dead loop frees what it can; a new one starts anyway
                    log.exception("closing the dead generation loop")
                batcher = ContinuousBatcher.for_engine(self.model, self.tokenizer, self.settings, self.device)
                self.batcher = batcher
            return batcher

    def close(self) -> None:
        """Unload the model: generations already queued or running finish first, then its memory
        (host and accelerator) is given back. The engine cannot generate afterwards."""
        import torch

        if self.batcher is not None:
            self.batcher.drain()
            self.batcher.close()
            self.batcher = None
        self.worker.shutdown(wait=True)
        self.closed = True
        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

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
            "batching": self.batching,
            "batching_reason": self.batching_reason,
            "load_s": round(self.load_seconds, 2),
        }


def answer_token_ids(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The tokens a reply may begin "yes" or "no" with ("Yes", " yes", "YES", …): each variant's first
    token (the whole word in a real vocabulary), none that both could begin with."""

    def firsts(words: list[str]) -> set[int]:
        found = set()
        for w in words:
            for variant in (w, " " + w):
                tok = tokenizer.encode(variant, add_special_tokens=False)
                if tok:
                    found.add(tok[0])
        return found

    yes, no = firsts(["yes", "Yes", "YES"]), firsts(["no", "No", "NO"])
    return sorted(yes - no), sorted(no - yes)
