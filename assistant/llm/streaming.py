"""Streaming pieces shared by every generation path: incremental detokenisation, per-generation
statistics, and the `Waiting` notice a queued answer yields before its first token."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Waiting:
    """Yielded instead of text while an answer waits for a place: `ahead` answers come first."""

    ahead: int


class TokenStreamer:
    """Streams text as soon as each token decodes (no waiting for a word boundary), and times tokens.

    Incremental detokenisation as in text-generation-inference: decode a small window before and
    after the newest token and emit the difference, holding back only an incomplete UTF-8 sequence.
    `put` is transformers' streamer interface (generate() calls it); `push` takes plain token ids
    (the batched path); iterating yields text chunks, and `None` as a heartbeat while nothing came.
    """

    HEARTBEAT_S = 0.25

    def __init__(self, tokenizer: Any, stop: threading.Event, lock: threading.Lock | None = None):
        self.tokenizer = tokenizer
        self.stop = stop
        self.lock = lock or threading.Lock()
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.ids: list[int] = []
        self.prefix = self.read = 0
        self.token_times: list[float] = []
        self._prompt_seen = False
        self._ended = False
        self._special = set(tokenizer.all_special_ids)

    # called by generate() on its thread
    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # the first call carries the prompt
            self._prompt_seen = True
            return
        if text := self.push([int(t) for t in value.reshape(-1).tolist()]):
            self.queue.put(text)

    def push(self, ids: list[int]) -> str:
        """Add new token ids; return the text they complete ('' while a character is incomplete)."""
        now = time.perf_counter()
        self.token_times.extend(now for _ in ids)
        self.ids.extend(ids)
        while self.ids and self.ids[-1] in self._special:
            self.ids.pop()
        if len(self.ids) <= self.read:
            return ""
        with self.lock:  # the tokenizer is shared with every session's prompt encoding
            before = self.tokenizer.decode(self.ids[self.prefix : self.read], skip_special_tokens=True)
            after = self.tokenizer.decode(self.ids[self.prefix :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.prefix, self.read = self.read, len(self.ids)
            return after[len(before) :]
        return ""

    def end(self) -> None:
        self._ended = True
        self.queue.put(None)

    def __iter__(self) -> Iterator[str | None]:
        while True:
            try:
                item = self.queue.get(timeout=self.HEARTBEAT_S)
            except queue.Empty:
                yield None
                continue
            if item is None:
                return
            yield item


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    new_tokens: int = 0
    queue_ms: float = 0.0  # waiting for a place (one at a time: the answers before it; batched: a full batch)
    first_token_ms: float = 0.0  # from the request to its first streamed text
    decode_tokens_per_s: float = 0.0
    total_ms: float = 0.0
    cancelled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def finish(self, token_times: list[float], start: float, cancelled: bool) -> None:
        self.new_tokens = len(token_times)
        self.total_ms = (time.perf_counter() - start) * 1000
        self.cancelled = cancelled
        if len(token_times) > 1 and token_times[-1] > token_times[0]:
            self.decode_tokens_per_s = (len(token_times) - 1) / (token_times[-1] - token_times[0])
