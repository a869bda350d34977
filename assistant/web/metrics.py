"""The server's Prometheus metrics, in a registry of the app's own (never prometheus-client's global
one: two apps in one process, as in the tests, keep separate counts).

Labels are few and bounded: `route` is the matched route's template (`/v1/chat/completions`,
`/gradio_api/queue/join`) or `unmatched`, never a raw path; `channel` is where an answer was asked
(`ui`, `api`, `ask`); `outcome` is `answered`, `abstained`, `stopped` or `failed`.

Exported (all prefixed `assistant_`):
- http_requests_total{route,method,status}, http_errors_total{route} (5xx), http_request_seconds{route}
- answers_total{channel,outcome} (abstentions are outcome="abstained"), answer_first_token_seconds,
  answer_seconds, answer_tokens_per_second (histograms by channel)
- index_files, index_chunks: what the shared index holds now (read at scrape time)
- ingested_files_total{result}: files added, updated, removed, unchanged or refused by this process's
  ingests
- active_sessions: browser logins not expired (from the database, at scrape time)
- llm_requests_in_flight, llm_batch_occupancy: answers queued or generating, and the share of the
  batch's places in use (0 when the model is not loaded or generates one at a time)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
RATE_BUCKETS = (1, 2, 5, 10, 20, 40, 80, 160, 320)
REQUEST_BUCKETS = (0.005, 0.025, 0.1, 0.25, 1, 2.5, 10, 30, 120)


def outcome_of(answer: Any) -> str:
    if answer is None:
        return "failed"
    if getattr(answer, "abstained", False):
        return "abstained"
    if "Stopped." in getattr(answer, "notices", []):
        return "stopped"
    return "answered"


class Metrics:
    """Every metric of one app; `render()` is the /metrics body."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self._watching = False
        self.requests = Counter(
            "assistant_http_requests", "HTTP requests by route", ["route", "method", "status"], registry=r
        )
        self.errors = Counter("assistant_http_errors", "HTTP 5xx responses by route", ["route"], registry=r)
        self.request_seconds = Histogram(
            "assistant_http_request_seconds",
            "Time to the end of the response",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.answers = Counter("assistant_answers", "Answers by outcome", ["channel", "outcome"], registry=r)
        self.first_token = Histogram(
            "assistant_answer_first_token_seconds",
            "Question to first answer token",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.answer_seconds = Histogram(
            "assistant_answer_seconds",
            "Question to finished answer",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens_per_s = Histogram(
            "assistant_answer_tokens_per_second",
            "Decode rate of each answer",
            ["channel"],
            buckets=RATE_BUCKETS,
            registry=r,
        )
        self.ingested = Counter(
            "assistant_ingested_files", "Files ingested by this process", ["result"], registry=r
        )

    def watch(self, assistant: Any, db: Any = None) -> Metrics:
        """Also export the gauges read at scrape time: the index, logins (with `db`), the model's queue."""
        if not self._watching:
            self.registry.register(_LiveState(assistant, db))
            self._watching = True
        return self

    # -- recording --------------------------------------------------------------------------------
    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.request_seconds.labels(route).observe(seconds)
        if status >= 500:
            self.errors.labels(route).inc()

    def answer(self, channel: str, answer: Any) -> None:
        """One finished turn (`answer` None: it failed). Latencies only for written answers."""
        outcome = outcome_of(answer)
        self.answers.labels(channel, outcome).inc()
        if outcome != "answered":
            return
        t = answer.timings
        if "first_token_ms" in t:
            self.first_token.labels(channel).observe(t["first_token_ms"] / 1000)
        if "total_ms" in t:
            self.answer_seconds.labels(channel).observe(t["total_ms"] / 1000)
        if t.get("tokens_per_s"):
            self.tokens_per_s.labels(channel).observe(t["tokens_per_s"])

    def ingest(self, report: Any) -> None:
        """Count an IngestReport's files (added or replaced, skipped as unchanged, refused)."""
        for result, n in (
            ("added", len(report.added)),
            ("updated", len(report.updated)),
            ("removed", len(report.removed)),
            ("unchanged", len(report.unchanged)),
            ("refused", len(report.skipped)),
        ):
            if n:
                self.ingested.labels(result).inc(n)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _LiveState:
    """Gauges read when scraped: the index, logins, the model's queue. A failing read is left out of
    that scrape (and logged), never an error for the scraper."""

    def __init__(self, assistant: Any, db: Any) -> None:
        self.assistant, self.db = assistant, db

    def describe(self) -> list[Any]:
        return []  # read at scrape time only: registering must not touch the index or the database

    def collect(self) -> Iterator[Any]:
        for read in (self._index, self._sessions, self._llm):
            try:
                yield from read()
            except Exception as exc:  # noqa: BLE001 - one missing gauge, not a failed scrape
                log.warning("metrics: %s failed: %s", read.__name__, exc)

    def _index(self) -> Iterator[Any]:
        if self.assistant is None:
            return
        store = self.assistant.store
        yield GaugeMetricFamily("assistant_index_chunks", "Chunks in the shared index", value=store.count())
        yield GaugeMetricFamily(
            "assistant_index_files", "Files in the shared index", value=len(store.files())
        )

    def _sessions(self) -> Iterator[Any]:
        if self.db is None:
            return
        from sqlalchemy import func, select

        from assistant.store.models import LoginSession, utcnow

        with self.db.session() as s:
            n = s.execute(select(func.count()).where(LoginSession.expires > utcnow())).scalar_one()
        yield GaugeMetricFamily("assistant_active_sessions", "Browser logins not expired", value=n)

    def _llm(self) -> Iterator[Any]:
        llm = self.assistant.loaded_llm() if self.assistant is not None else None
        batcher = getattr(llm, "batcher", None)
        active = batcher.active() if batcher is not None else 0
        size = getattr(batcher, "batch_size", 0) or 0
        yield GaugeMetricFamily(
            "assistant_llm_requests_in_flight", "Answers queued or generating in the batch", value=active
        )
        yield GaugeMetricFamily(
            "assistant_llm_batch_occupancy",
            "Share of the batch's places in use",
            value=min(active, size) / size if size else 0.0,
        )
