"""`Assistant`: the one object the CLI, the chain and the UI build on.

Each infrastructure part (embedder, Chroma client) is built here once from settings, or handed in,
so tests and benchmarks can swap in their own.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chromadb

from assistant.chat.chain import Answer, RagChain
from assistant.knowledge.chroma import make_client
from assistant.knowledge.corpus import Chunker
from assistant.knowledge.embedder import Embedder
from assistant.knowledge.index import Store, owner_id
from assistant.knowledge.ingest import IngestReport, ingest
from assistant.knowledge.ingest import rebuild as rebuild_index
from assistant.knowledge.retrieval import HybridRetriever, SearchResult
from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.llm.engine import LLMEngine
    from assistant.runs.diagnose import Diagnosis


@dataclass
class _Turn:
    stop: threading.Event
    cut_short: bool = False  # stopped by a model switch


def make_engine(settings: Settings) -> Any:
    """The LLM every session shares: a remote OpenAI-compatible server when `llm_url` is set (no
    model is loaded here), else the model loaded in this process."""
    if settings.llm_url:
        from assistant.llm.remote import RemoteEngine

        return RemoteEngine(settings)
    from assistant.llm.engine import LLMEngine

    return LLMEngine(settings)


class Assistant:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        client: chromadb.ClientAPI | None = None,
        llm: LLMEngine | None = None,
    ):
        self.settings = s = settings or Settings()
        self.embedder = embedder or Embedder(
            s.embedder, s.embedder_device, s.embed_batch_size, stamp_dir=s.cache_dir
        )
        self.chunker = Chunker(
            self.embedder.count_tokens,
            min(s.chunk_max_tokens, self.embedder.max_tokens),
            s.chunk_overlap_tokens,
        )
        self.store = Store(
            client or make_client(s),
            s.collection,
            self.embedder,
            self.chunker,
            owner_id(s.data_dir, s.shared_uploads_dir),  # replicas sharing uploads share the documents
        )
        self.retriever = HybridRetriever(self.store, s)
        self._llm = llm
        # The model every session shares. `_engine` guards `_llm` and the turns in flight; a switch
        # waits for those turns (new ones wait for the switch), then unloads the old model before
        # loading the new one, so two models are never in memory together. Searches never take it.
        self._engine = threading.Condition()
        self._switching = False
        self._switch_lock = threading.Lock()
        self._turns: dict[int, _Turn] = {}
        self._turn_ids = itertools.count()
        self._chain_lock = threading.Lock()
        self._chain: RagChain | None = None
        self._indexed_checked = False
        self._index_lock = threading.Lock()  # the first searches of a fresh store wait for one ingest

    @property
    def llm(self) -> LLMEngine:
        """The language model, loaded on first use (search alone never pays for it). While a switch
        replaces it, turns already in flight keep the old one and everyone else waits for the new."""
        with self._engine:
            self._engine.wait_for(lambda: self._llm is not None or not self._switching)
            if self._llm is None:
                self._llm = make_engine(self.settings)
            return self._llm

    def loaded_llm(self) -> Any:
        """The model if one is loaded now, else None; never loads one (readiness checks, metrics)."""
        return self._llm

    def close(self) -> None:
        """Stop the model's generation loop and free the model, before the process exits (its
        threads end in order, not under interpreter shutdown). Asked again, it loads afresh."""
        with self._engine:
            llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()

    def ingest(
        self, paths: Iterable[Path] | None = None, *, rebuild: bool = False, progress: bool = False
    ) -> IngestReport:
        """Index files (default: the configured corpus, and the uploads folder, so an upload that a
        crash interrupted between storing the file and indexing it is indexed now rather than left
        behind unlisted). Unchanged files are skipped. `rebuild` drops the index and re-indexes these
        paths plus every other file indexed from here (uploads too)."""
        uploads = self.settings.uploads_dir
        default = [*self.settings.corpus_paths, *([uploads] if uploads.is_dir() else [])]
        todo = list(paths) if paths is not None else default
        kw: dict[str, Any] = {"max_bytes": int(self.settings.max_file_mb * 1e6), "progress": progress}
        with self.store.lock:  # one writer at a time in this process (uploads come from many threads)
            if rebuild:
                return rebuild_index(self.store, todo, **kw)
            self.store.check()
            return ingest(self.store, todo, **kw)

    def remove(self, path: Path) -> int:
        """Drop one of this data directory's files from the index; returns the number of chunks removed.
        Every running retriever (in any process) stops returning it before its next search."""
        return self.store.delete_file(str(Path(path).resolve()))

    def documents(self) -> list[tuple[str, int, str, str]]:
        """(file, units, origin, document id) per indexed document, origin being "corpus", "uploaded" or
        "another host" (one sharing the Chroma server indexed it: it cannot be removed from here). The
        replicas of one deployment (`shared_uploads_dir`) are one owner: each lists the same."""
        uploads = self.settings.uploads_dir.resolve()
        rows = []
        for doc_id, info in sorted(
            self.store.files().items(), key=lambda kv: (kv[1]["source"], kv[1]["path"])
        ):
            if info["owner"] != self.store.owner:
                where = "another host"
            else:
                where = "uploaded" if Path(info["path"]).is_relative_to(uploads) else "corpus"
            rows.append((info["source"], info["units"], where, doc_id))
        return rows

    def ensure_indexed(self) -> None:
        """Index the configured corpus on first use if the store is empty (a fresh data directory).
        Concurrent first searches wait for that one ingest rather than search an empty store."""
        if self._indexed_checked:
            return
        with self._index_lock:
            if self._indexed_checked:
                return
            if self.store.count() == 0 and all(Path(p).exists() for p in self.settings.corpus_paths):
                self.ingest()
            self._indexed_checked = True

    def search(self, query: str, k: int | None = None) -> list[SearchResult]:
        """The k most relevant Q&A units for a query, best first, one hit per unit."""
        self.store.check()
        self.ensure_indexed()
        return self.retriever.search(query, k)

    def as_retriever(self, k: int | None = None) -> Any:
        """The hybrid search as a langchain `BaseRetriever` (one Document per unit; metadata: source,
        question, unit_id, scores), for use in any langchain chain."""
        from assistant.knowledge.lc_retriever import IndexRetriever

        return IndexRetriever(search=self.search, k=k or self.settings.sources_k)

    def set_model(self, name: str, *, drain_s: float = 120.0) -> LLMEngine:
        """Switch every session to another LLM (a preset, `auto`, a folder…).

        An unknown name is refused before anything changes. New turns wait while answers already
        being written finish on the old model; any still running after `drain_s` seconds is stopped
        and says so. The old model is then unloaded and the new one loaded (never both in memory).
        Searches go on throughout. If the new model fails to load, the configured one is loaded
        again on next use."""
        from assistant.llm.engine import LLMEngine
        from assistant.llm.models import resolve_model

        if self.settings.llm_url:
            raise ValueError(f"the model is served by {self.settings.llm_url}: switch it there, not here")
        settings = self.settings.model_copy(update={"llm_model": name})
        with self._switch_lock:
            current = self._llm
            if current is not None and name in {current.name, self.settings.llm_model}:
                return current
            resolve_model(settings)  # an unknown or missing model: a clear error, nothing changed
            with self._engine:
                self._switching = True
                if not self._engine.wait_for(lambda: not self._turns, timeout=drain_s):
                    for turn in self._turns.values():
                        turn.cut_short = True
                        turn.stop.set()
                    self._engine.wait_for(lambda: not self._turns, timeout=30)
                old, self._llm = self._llm, None
            try:
                if old is not None:
                    old.close()
                engine = LLMEngine(settings)
            except BaseException:
                with self._engine:
                    self._switching = False
                    self._engine.notify_all()
                raise
            with self._engine:
                self._llm = engine
                self.settings.llm_model = name
                self._switching = False
                self._engine.notify_all()
            return engine

    # -- conversation ------------------------------------------------------------------------------
    @property
    def chain(self) -> RagChain:
        with self._chain_lock:
            if self._chain is None:
                self._chain = RagChain(self, self.settings)
            return self._chain

    def ask_stream(
        self,
        question: str,
        history: list[dict[str, Any]] | None = None,
        *,
        stop: threading.Event | None = None,
        problem: dict[str, Any] | None = None,
        **generation: Any,
    ) -> Iterator[str | Answer]:
        """Yield the answer's text chunks as they are generated, then the final Answer (whose `answer`
        is authoritative: citations attributed after generation appear only there). Setting `stop`
        ends the turn at the next token, during the follow-up rewrite too. `problem`: the
        conversation's problem card (assistant/chat/problem.py), used to rewrite, search and answer."""
        if problem:
            generation["problem"] = problem
        return self._turn(question, history, stop or threading.Event(), generation)

    def _turn(
        self, question: str, history: list[dict[str, Any]] | None, stop: threading.Event, generation: Any
    ) -> Iterator[str | Answer]:
        """One turn, counted in flight so that a model switch waits for it (see set_model)."""
        turn = _Turn(stop)
        with self._engine:
            self._engine.wait_for(lambda: not self._switching)
            key = next(self._turn_ids)
            self._turns[key] = turn
        try:
            for item in self.chain.stream(question, history, stop=stop, **generation):
                if isinstance(item, Answer) and turn.cut_short:
                    item.notices.append(
                        "The model was switched while this answer was written: it was cut short."
                    )
                yield item
        finally:
            with self._engine:
                del self._turns[key]
                self._engine.notify_all()

    def ask(self, question: str, history: list[dict[str, Any]] | None = None, **generation: Any) -> Answer:
        """Answer a question (a follow-up, given `history` as [{role, content}, …]) with cited sources;
        `problem=card` passes the conversation's problem card (see ask_stream)."""
        final = None
        for item in self.ask_stream(question, history, **generation):
            if isinstance(item, Answer):
                final = item
        assert final is not None
        return final

    def diagnose(
        self,
        path_or_text: str | Path,
        question: str | None = None,
        *,
        plot_path: Path | None = None,
        history: list[dict[str, Any]] | None = None,
        **generation: Any,
    ) -> Diagnosis:
        """Read a training log (a path, a TensorBoard folder, or pasted text), name what its curves
        show, and answer from the documents with the symptoms as the question. The result holds the
        findings, the Answer and the plot (PNG bytes; also written to `plot_path` when given). A file
        that is not a log raises RunParseError (a ValueError) before any model is used."""
        from assistant.runs.diagnose import diagnose
        from assistant.runs.parse import Limits

        return diagnose(
            path_or_text,
            question,
            lambda q: self.ask(q, history, **generation),
            prompts_dir=self.settings.prompts_dir,
            limits=Limits.from_settings(self.settings),
            plot_path=plot_path,
        )

    def stats(self) -> dict[str, Any]:
        files = self.store.files()
        return {
            "collection": self.settings.collection,
            "owner": self.store.owner,
            "mode": "server" if self.settings.server_mode else "embedded",
            "location": self.settings.chroma_url or str(self.settings.chroma_dir),
            "files": len(files),
            "units": sum(f["units"] for f in files.values()),
            "vectors": self.store.count(),
            "manifest": self.store.manifest(),
            "mismatch": self.store.mismatch(),
        }
