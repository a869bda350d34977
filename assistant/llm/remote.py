"""A remote serving engine: rewrites and answers from any OpenAI-compatible server.

vLLM, TGI, llama.cpp's server, Ollama or `transformers serve` answer `/v1/chat/completions`; this
module talks to them through the `openai` package (streaming, timeouts, typed errors), and offers
the chain the same surface as the in-process `LLMEngine`: `stream`, `generate`, `count_tokens`,
`count_messages`, `context_window`, `describe`.

Token budgets use the model's own tokenizer when it is on disk (a folder, or the model id in the
local Hugging Face cache); otherwise a conservative estimate of one token per 3 UTF-8 bytes (real
BPE tokenizers average 3.5-4.5 bytes per token on English, so prompts are never underestimated).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.llm.errors import LLMError
from assistant.llm.streaming import GenerationStats
from assistant.settings import Settings

log = logging.getLogger(__name__)

BYTES_PER_TOKEN_ESTIMATE = 3  # conservative: see the module docstring
MESSAGE_OVERHEAD_TOKENS = 8  # role markers and separators a chat template adds per message
DEFAULT_REMOTE_WINDOW = 4096  # when neither the settings nor a local config say otherwise


class RemoteLLMError(LLMError):
    """The model server could not answer; the message says why in words a user can act on."""


def explain(exc: BaseException, url: str, model: str) -> RemoteLLMError:
    """Turn an `openai` client error into a clear message (never a stack trace)."""
    import openai

    status = getattr(exc, "status_code", None)
    detail = str(getattr(exc, "message", "") or exc)[:300]
    if isinstance(exc, openai.APITimeoutError):
        why = f"the model server at {url} did not answer in time"
    elif isinstance(exc, openai.APIConnectionError):
        why = f"the model server at {url} cannot be reached (is it running?)"
    elif status == 401 or isinstance(exc, openai.AuthenticationError):
        why = f"the model server at {url} refused the API key (401): check llm_api_key"
    elif status == 403:
        why = f"the model server at {url} does not allow this key to use {model!r} (403)"
    elif status == 404:
        why = f"the model server at {url} has no model {model!r} (404): check llm_remote_model"
    elif status in (400, 413, 422) and any(w in detail.lower() for w in ("context", "too long", "maximum")):
        why = (
            f"the question and its sources are too long for {model!r}: lower sources_k or context_max_tokens"
        )
    elif status == 429:
        why = f"the model server at {url} is busy (429): try again in a moment"
    elif status is not None and status >= 500:
        why = f"the model server at {url} failed ({status})"
    elif status is not None:
        why = f"the model server at {url} rejected the request ({status})"
    else:
        why = f"the model server at {url} stopped answering ({type(exc).__name__})"
    return RemoteLLMError(f"{why}. Detail: {detail}. The assistant is still running.")


def local_tokenizer(settings: Settings) -> Any | None:
    """The remote model's tokenizer if it is on disk (never downloaded), else None."""
    from transformers import AutoTokenizer

    for name in filter(None, [settings.llm_remote_tokenizer, settings.llm_remote_model]):
        try:
            if Path(name).expanduser().is_dir():
                return AutoTokenizer.from_pretrained(Path(name).expanduser())
            return AutoTokenizer.from_pretrained(name, local_files_only=True)
        except Exception:  # noqa: BLE001 - not on disk: fall back to the estimate
            continue
    return None


@dataclass
class RemoteGeneration:
    """One streamed answer from the server: iterate for text; `.stats` afterwards; `.cancel()`."""

    engine: RemoteEngine
    messages: list[dict[str, str]]
    max_new_tokens: int
    temperature: float
    stop: threading.Event = field(default_factory=threading.Event)
    stats: GenerationStats = field(default_factory=GenerationStats)
    text: str = ""

    def cancel(self) -> None:
        self.stop.set()

    def __iter__(self) -> Iterator[str]:
        e = self.engine
        start = time.perf_counter()
        self.stats.prompt_tokens = e.count_messages(self.messages)
        if self.stop.is_set():
            self.stats.cancelled = True
            return
        try:
            stream = e.client.chat.completions.create(
                model=e.model,
                messages=self.messages,  # type: ignore[arg-type]
                stream=True,
                max_tokens=self.max_new_tokens,
                temperature=self.temperature,
                top_p=e.settings.llm_top_p if self.temperature > 0 else 1.0,
            )
        except Exception as exc:  # noqa: BLE001 - one clear error type for the chain and the UI
            raise explain(exc, e.url, e.model) from None
        # Stop closes the HTTP stream from another thread, so it works even while a read blocks.
        done = threading.Event()
        closer = threading.Thread(target=self._close_on_stop, args=(stream, done), daemon=True)
        closer.start()
        times: list[float] = []
        try:
            for chunk in stream:
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta:
                    times.append(time.perf_counter())
                    if not self.text:
                        self.stats.first_token_ms = (times[-1] - start) * 1000
                    self.text += delta
                    yield delta
                if self.stop.is_set():
                    break
        except GeneratorExit:
            self.stop.set()
            raise
        except Exception as exc:  # noqa: BLE001
            if not self.stop.is_set():
                raise explain(exc, e.url, e.model) from None
        finally:
            self.stats.cancelled = self.stop.is_set()
            done.set()  # releases the closer thread (the caller's stop event is never set here)
            stream.close()
            self.stats.new_tokens = len(times)  # chunks: servers send about one token each
            self.stats.total_ms = (time.perf_counter() - start) * 1000
            if len(times) > 1:
                self.stats.decode_tokens_per_s = (len(times) - 1) / (times[-1] - times[0])

    def _close_on_stop(self, stream: Any, done: threading.Event) -> None:
        while not done.wait(0.05):
            if self.stop.is_set():
                stream.close()
                return


class RemoteEngine:
    """The chain's LLM, served by another process or machine over the OpenAI API."""

    device = "remote"
    dtype = "n/a"
    quantization = "n/a"
    fast_path = False
    batching = "remote"

    def __init__(self, settings: Settings, *, client: Any = None):
        import openai

        if not settings.llm_url:
            raise ValueError("llm_url is not set: the remote engine needs an OpenAI-compatible server URL")
        self.settings = settings
        self.url = settings.llm_url.rstrip("/")
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
        self.client = client or openai.OpenAI(
            base_url=self.url, api_key=key, timeout=settings.llm_remote_timeout, max_retries=0
        )
        self.model = settings.llm_remote_model or self._only_model()
        self.tokenizer = local_tokenizer(settings)
        self._tok_lock = threading.Lock()  # fast tokenizers are not thread-safe (tokenizers#537)
        self.load_seconds = 0.0
        log.warning("LLM: remote %s at %s (tokens: %s)", self.model, self.url, self.token_counting)

    def _only_model(self) -> str:
        try:
            models = [m.id for m in self.client.models.list()]
        except Exception as exc:  # noqa: BLE001
            raise ValueError(
                f"llm_remote_model is not set and the server at {self.url} did not list its models "
                f"({type(exc).__name__}); set llm_remote_model"
            ) from None
        if len(models) != 1:
            raise ValueError(f"llm_remote_model is not set and the server offers {models or 'no models'}")
        return models[0]

    @property
    def name(self) -> str:
        return self.model

    @property
    def token_counting(self) -> str:
        return "the model's tokenizer" if self.tokenizer is not None else "estimate (1 token per 3 bytes)"

    @property
    def context_window(self) -> int:
        """The setting if given, else the local tokenizer's limit if plausible, else a safe default."""
        if self.settings.llm_context_window:
            return self.settings.llm_context_window
        own = int(getattr(self.tokenizer, "model_max_length", 0) or 0)
        return own if 0 < own <= 1_000_000 else DEFAULT_REMOTE_WINDOW

    def count_tokens(self, text: str) -> int:
        if self.tokenizer is None:
            return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN_ESTIMATE)
        with self._tok_lock:
            return len(self.tokenizer.encode(text, add_special_tokens=False))

    def count_messages(self, messages: list[dict[str, str]]) -> int:
        return sum(self.count_tokens(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in messages) + 4

    def stream(
        self,
        messages: list[dict[str, str]] | None = None,
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: threading.Event | None = None,
        **_: Any,
    ) -> RemoteGeneration:
        s = self.settings
        messages = messages or []
        room = self.context_window - self.count_messages(messages)
        if room < 1:
            raise ValueError(f"the prompt fills the {self.context_window}-token window")
        gen = RemoteGeneration(
            self,
            messages,
            min(max_new_tokens or s.llm_max_new_tokens, room),
            s.llm_temperature if temperature is None else temperature,
        )
        if stop is not None:
            gen.stop = stop
        return gen

    def generate(self, messages: list[dict[str, str]], **kw: Any) -> str:
        gen = self.stream(messages, **kw)
        for _ in gen:
            pass
        return gen.text

    def yes_probabilities(self, prompts: list[list[dict[str, str]]], batch: int = 8) -> list[float] | None:
        """P(yes) / (P(yes) + P(no)) of each reply's first token from the server's `logprobs`; None when
        the server does not give them (the check then reads the passage alone, chat/entailment.py)."""
        out: list[float] = []
        for messages in prompts:
            try:
                reply = self.client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    max_tokens=1,
                    temperature=0,
                    logprobs=True,
                    top_logprobs=10,
                )
                top = reply.choices[0].logprobs.content[0].top_logprobs
            except Exception as exc:  # noqa: BLE001 - a server without logprobs: say so once, go on without
                log.info("the server gives no logprobs (%s): the check reads the passage alone", exc)
                return None
            yes = sum(math.exp(t.logprob) for t in top if t.token.strip().lower() == "yes")
            no = sum(math.exp(t.logprob) for t in top if t.token.strip().lower() == "no")
            out.append(yes / (yes + no) if yes + no > 0 else 0.5)
        return out

    def warmup(self) -> None:
        """Check the server answers, so a wrong URL or key shows at start-up, not at the first question."""
        self.generate([{"role": "user", "content": "Hi"}], max_new_tokens=2)

    def waiting_ahead(self, generation: Any) -> int:
        return 0  # the server queues; it does not say where a request stands

    def close(self) -> None:
        self.client.close()

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "reason": "llm_url is set",
            "url": self.url,
            "device": self.device,
            "context_window": self.context_window,
            "token_counting": self.token_counting,
            "batching": self.batching,
        }
