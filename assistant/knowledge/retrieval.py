"""Hybrid retrieval: BM25 over chunk text fused with Chroma vector search, one hit per unit.

The BM25 side is built once from the store's records and rebuilt only when the store changes, never
per query. Every search first reads the store-wide version token (one small Chroma read) that every
ingest or removal, in any process, rewrites; when it differs from the one the BM25 side was built at,
that side is rebuilt under a lock and swapped in as one immutable snapshot, so a search never mixes
two states and never returns a unit no longer in the store.

Up to `exact_search_max_records` records, the snapshot also holds every vector and the vector side is
an exact matrix product. Chroma's HNSW is approximate: on this corpus about one single-file ingest in
six left the new record unreachable in the graph (a query with its own vector and n_results=count did
not return it), and another process's HNSW does not see writes made after it loaded. Exact search
over the snapshot has neither problem and costs well under a millisecond at this size; past the limit
Chroma's index answers.
"""

from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import numpy as np
import snowballstemmer
from chromadb.errors import ChromaError
from rank_bm25 import BM25Okapi
from scipy import sparse

from assistant.knowledge.index import Store
from assistant.settings import Settings

# Function words carry no topic; dropping them keeps BM25 from matching on "how do I".
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves get got want use using
    """.split()  # noqa: SIM905
)
log = logging.getLogger(__name__)
_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_stemmer = snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:  # the stemmer is pure Python; a corpus repeats few distinct words
    return _stemmer.stemWord(word)


def tokenize(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


class SparseBM25:
    """Okapi BM25 scores exactly as rank-bm25 computes them, precomputed into a sparse matrix.

    rank-bm25's Okapi idf floors terms found in over half the pieces to a tiny weight, which on a
    small Q&A corpus mutes "deep", "learning", "model" (it measured better than Lucene-style idf on
    both goldsets). Its `get_scores` loops in Python over every piece per query term; the matrix of
    per-(piece, term) weights turns a query into one sparse column sum: ~0.3 ms at 10k units.
    """

    def __init__(self, corpus: list[list[str]]):
        okapi = BM25Okapi(corpus)
        self.vocab = {term: i for i, term in enumerate(okapi.idf)}
        rows, cols, vals = [], [], []
        for d, (freqs, length) in enumerate(zip(okapi.doc_freqs, okapi.doc_len, strict=True)):
            norm = okapi.k1 * (1 - okapi.b + okapi.b * length / okapi.avgdl)
            for term, tf in freqs.items():
                rows.append(d)
                cols.append(self.vocab[term])
                vals.append(okapi.idf[term] * tf * (okapi.k1 + 1) / (tf + norm))
        self.weights = sparse.csc_matrix((vals, (rows, cols)), shape=(len(corpus), len(self.vocab)))

    def get_scores(self, query: list[str]) -> np.ndarray:
        cols = [self.vocab[t] for t in query if t in self.vocab]  # repeats count, as in rank-bm25
        if not cols:
            return np.zeros(self.weights.shape[0])
        return np.asarray(self.weights[:, cols].sum(axis=1)).ravel()


class EmptyQueryError(ValueError):
    """The query has no text to search for."""


@dataclass
class SearchResult:
    unit_id: str
    source: str
    doc_title: str
    title: str  # the question the unit answers
    text: str  # the whole answer
    passage: str  # the best-matching piece of it (the answer if it is one piece)
    score: float  # fused score; ranks results within one list (BM25 part is relative to the query's best)
    relevance: float  # absolute: same weights, BM25 saturating at bm25_saturation; abstention reads it
    vector_score: float | None  # cosine similarity of the best piece, if it was a vector candidate
    bm25_score: float | None
    position: int
    kind: str
    doc: str = ""  # the document's index id (`GET /documents/{doc}` serves it whole)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def document_url(doc_id: str) -> str:
    """Where the whole document of a source is served (web/document_route.py), by its index id."""
    return f"/documents/{quote(doc_id, safe='')}"


@dataclass
class _Piece:
    id: str
    unit_id: str
    document: str


@dataclass(frozen=True)
class _Snapshot:
    """What one store version holds, read once; searches use one snapshot throughout."""

    token: str | None
    pieces: list[_Piece] = field(default_factory=list)
    units: dict[str, dict[str, Any]] = field(default_factory=dict)
    live: frozenset[str] = frozenset()  # current generations: records of others are not (yet) in the store
    bm25: SparseBM25 | None = None
    records: int = 0
    docs: dict[str, str] = field(default_factory=dict)
    # exact vector search: unit-length vectors of every live record, and their record ids
    vectors: np.ndarray | None = None
    vector_ids: list[str] = field(default_factory=list)


def _unit_rows(vectors: list[Any]) -> np.ndarray:
    """Rows scaled to unit length (cosine as a dot product), float32."""
    if not vectors:
        return np.zeros((0, 0), dtype=np.float32)
    m = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms == 0, 1.0, norms)


class HybridRetriever:
    """score = vector_weight * best cosine over the unit's vectors + bm25_weight * BM25 / best BM25.

    A weighted sum of scores rather than reciprocal-rank fusion: it keeps how far ahead the best
    match is, which measured better on both goldsets (docs/benchmarks.md), and it gives a score
    with an absolute meaning that abstention can threshold.
    """

    def __init__(self, store: Store, settings: Settings):
        self.store = store
        self.settings = settings
        self._lock = threading.Lock()
        self._snap = _Snapshot(token=None)
        self._stale = True
        self._io = ThreadPoolExecutor(max_workers=4, thread_name_prefix="store-version")

    # -- the BM25 side -------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Rebuild before the next search even if the store's version did not change."""
        self._stale = True

    def _current(self, token: str | None = None) -> _Snapshot:
        """The snapshot for the store's version now (`token`, if the caller already read it)."""
        token = self.store.version() if token is None else token
        snap = self._snap
        if snap.token == token and not self._stale:
            return snap
        with self._lock:
            if self._snap.token == token and not self._stale:
                return self._snap
            self._stale = False
            live = frozenset(f["gen"] for f in self.store.files().values())
            records = self.store.count()
            exact = records <= self.settings.exact_search_max_records
            try:
                pieces, units, vectors, vector_ids = self._read(live, exact)
            except ChromaError:
                if not exact:
                    raise
                # This process's Chroma cannot hand out vectors another process wrote (it keeps them
                # in its in-memory HNSW segment, loaded before): search them by words until restart.
                log.warning(
                    "another process wrote to the index; its new vectors are not visible to this "
                    "process until it restarts (run Chroma as a server, chroma_url, to share one index)"
                )
                pieces, units, vectors, vector_ids = self._read(live, False)
                exact = False
            corpus = [tokenize(p.document) for p in pieces]
            self._snap = _Snapshot(
                token=token,
                pieces=pieces,
                units=units,
                live=live,
                bm25=SparseBM25(corpus) if any(corpus) else None,
                records=records,
                docs={p.id: p.document for p in pieces},
                vectors=_unit_rows(vectors) if exact else None,
                vector_ids=vector_ids,
            )
            return self._snap

    def _read(
        self, live: frozenset[str], exact: bool
    ) -> tuple[list[_Piece], dict[str, dict[str, Any]], list[Any], list[str]]:
        """(pieces, units, vectors, their record ids) of the live generations; vectors only if exact."""
        pieces, units, vectors, vector_ids = [], {}, [], []
        include = ("documents", "metadatas", "embeddings") if exact else ("documents", "metadatas")
        for rec in self.store.records(include, where=None if exact else {"role": "piece"}):
            m = rec["metadata"]
            if m.get("gen") not in live:  # a write under way, or what a killed one left
                continue
            if exact:
                vectors.append(rec["embedding"])
                vector_ids.append(rec["id"])
            if m.get("role") != "piece":
                continue
            pieces.append(_Piece(rec["id"], m["unit_id"], rec["document"] or ""))
            if "unit_text" in m:
                units[m["unit_id"]] = m
        return pieces, units, vectors, vector_ids

    def unit_count(self) -> int:
        return len(self._current().units)

    def units(self) -> list[dict[str, Any]]:
        """Metadata of every indexed unit (source, title, kind, …), in index order."""
        return list(self._current().units.values())

    # -- search --------------------------------------------------------------------------------
    def _vector_scores(self, snap: _Snapshot, query_vec: np.ndarray, n: int) -> dict[str, tuple[float, str]]:
        """unit -> (best cosine, id of its best-matching *piece*) among the n nearest vectors.

        Record ids are `<unit_id>:<generation>:p<i>` (pieces) and `…:k<i>` (keys), so only distances
        are fetched: pulling metadata (which carries whole answers) would cost more than the search.
        """
        if snap.vectors is not None:  # exact (module docstring)
            if not len(snap.vector_ids):
                return {}
            q = np.asarray(query_vec, dtype=np.float32)
            sims = snap.vectors @ (q / (np.linalg.norm(q) or 1.0))
            top = np.argpartition(-sims, n - 1)[:n] if len(sims) > n else np.arange(len(sims))
            top = top[np.argsort(-sims[top], kind="stable")]
            hits = [(snap.vector_ids[i], float(sims[i])) for i in top]
        else:
            got = self.store.collection.query(
                query_embeddings=[query_vec.tolist()], n_results=n, include=["distances"]
            )
            hits = [(rid, 1.0 - float(d)) for rid, d in zip(got["ids"][0], got["distances"][0], strict=True)]
        best: dict[str, tuple[float, str]] = {}
        for rid, sim in hits:
            uid, gen, role = rid.split(":")
            if gen not in snap.live:
                continue
            piece = rid if role.startswith("p") else ""
            if uid not in best:
                best[uid] = (sim, piece)
            elif piece and not best[uid][1]:  # hits come best first: keep the score, learn the piece
                best[uid] = (best[uid][0], piece)
        return best

    def _bm25_scores(self, snap: _Snapshot, query: str, n: int) -> dict[str, tuple[float, str]]:
        """unit -> (best BM25 of its pieces, that piece's id) for the n best pieces."""
        tokens = tokenize(query)
        if snap.bm25 is None or not tokens:
            return {}
        scores = snap.bm25.get_scores(tokens)
        top = np.argpartition(-scores, min(n, len(scores) - 1))[:n] if len(scores) > n else range(len(scores))
        best: dict[str, tuple[float, str]] = {}
        for i in top:
            if scores[i] > 0:
                p = snap.pieces[i]
                if p.unit_id not in best or scores[i] > best[p.unit_id][0]:
                    best[p.unit_id] = (float(scores[i]), p.id)
        return best

    def search(
        self, query: str, k: int | None = None, query_vec: np.ndarray | None = None
    ) -> list[SearchResult]:
        if not query or not query.strip():
            raise EmptyQueryError("the query is empty: type a question or some keywords")
        if query_vec is None:  # the version read (a Chroma round trip) overlaps the query's embedding
            token = self._io.submit(self.store.version)
            query_vec = self.store.embedder.embed_query(query)
            snap = self._current(token.result())
        else:
            snap = self._current()
        if not snap.units:
            return []
        s = self.settings
        k = k or s.retrieval_k
        vec = self._vector_scores(snap, query_vec, min(max(s.candidates, 4 * k), snap.records))
        bm = self._bm25_scores(snap, query, min(max(s.candidates, 4 * k), len(snap.pieces)))
        top_bm = max((v[0] for v in bm.values()), default=0.0) or 1.0
        floor = min((v[0] for v in vec.values()), default=0.0)  # units past the vector cut-off
        fused = {
            uid: s.vector_weight * vec.get(uid, (floor, ""))[0]
            + s.bm25_weight * bm.get(uid, (0.0, ""))[0] / top_bm
            for uid in set(vec) | set(bm)
        }
        out = []
        for uid in sorted(fused, key=lambda u: -fused[u]):
            meta = snap.units.get(uid)
            if meta is None:  # written after this snapshot was read: the next search sees it
                continue
            piece_id = (vec.get(uid, (0, ""))[1] or bm.get(uid, (0, ""))[1]) or f"{uid}:p0"
            out.append(
                SearchResult(
                    unit_id=uid,
                    source=meta["source"],
                    doc_title=meta["doc_title"],
                    title=meta["title"],
                    text=meta["unit_text"],
                    passage=self._passage(snap, piece_id, meta["unit_text"]),
                    score=round(fused[uid], 4),
                    relevance=round(
                        s.vector_weight * vec.get(uid, (floor, ""))[0]
                        + s.bm25_weight * min(1.0, bm.get(uid, (0.0, ""))[0] / s.bm25_saturation),
                        4,
                    ),
                    vector_score=round(vec[uid][0], 4) if uid in vec else None,
                    bm25_score=round(bm[uid][0], 4) if uid in bm else None,
                    position=int(meta["position"]),
                    kind=meta["kind"],
                    doc=meta.get("doc", ""),
                )
            )
            if len(out) == k:
                break
        return out

    @staticmethod
    def _passage(snap: _Snapshot, piece_id: str, unit_text: str) -> str:
        doc = snap.docs.get(piece_id)
        return doc.split("\n\n", 1)[-1] if doc else unit_text
