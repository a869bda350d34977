"""The Chroma store: client, manifest, and incremental, idempotent ingest.

Each chunk (an embedded piece of a unit) is one Chroma record whose metadata names its unit, file and
the file's content hash. Ingest compares content hashes: unchanged files are skipped, changed files
replaced, files gone from disk deleted. A file's records are written all or nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import chromadb
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.config import Settings as ChromaSettings

from assistant.knowledge.corpus import Chunker, LoadError, Unit, iter_files
from assistant.knowledge.embedder import Embedder
from assistant.settings import Settings

log = logging.getLogger(__name__)
MAX_BATCH = 1000  # records per Chroma call; well under every client's limit


class IndexMismatchError(RuntimeError):
    """The stored index was built with another embedder or chunker."""


class ChromaEmbedding(EmbeddingFunction[Documents]):
    """Our embedder as Chroma's explicit embedding function (so Chroma never falls back to a download)."""

    def __init__(self, embedder: Embedder | None = None, model: str = "all-MiniLM-L6-v2"):
        self._embedder = embedder
        self.model = embedder.id if embedder else model

    def __call__(self, input: Documents) -> Embeddings:
        if self._embedder is None:  # rebuilt from a stored config: load lazily, still offline
            self._embedder = Embedder(self.model)
        return list(self._embedder.embed(list(input)))

    @staticmethod
    def name() -> str:
        return "dl-assistant-sentence-transformer"

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbedding:
        return ChromaEmbedding(model=config.get("model", "all-MiniLM-L6-v2"))

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"


def make_client(settings: Settings) -> chromadb.ClientAPI:
    """Embedded PersistentClient under data_dir, or an HttpClient when a Chroma URL is set."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.server_mode:
        if not settings.chroma_url:
            raise ValueError("chroma_mode is 'server' but chroma_url is not set")
        url = urlparse(settings.chroma_url)
        return chromadb.HttpClient(
            host=url.hostname or "127.0.0.1",
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    units: int = 0  # units written by this run
    vectors: int = 0  # records written: pieces plus keys
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.removed)} removed, {len(self.skipped)} skipped; {self.units} units "
            f"({self.vectors} vectors) written in {self.seconds:.1f} s"
        )


class Store:
    """One Chroma collection of chunks plus the manifest that says how they were made."""

    def __init__(self, client: chromadb.ClientAPI, name: str, embedder: Embedder, chunker: Chunker):
        self.client = client
        self.name = name
        self.embedder = embedder
        self.chunker = chunker
        self.ef = ChromaEmbedding(embedder)
        self.collection = self._open()

    # -- manifest -----------------------------------------------------------------------------
    def manifest(self) -> dict[str, str | int]:
        return {"embedder": self.embedder.id, "dim": self.embedder.dim, **self.chunker.params}

    def _open(self) -> Any:
        return self.client.get_or_create_collection(
            self.name,
            embedding_function=self.ef,
            metadata=self.manifest(),
            configuration={"hnsw": {"space": "cosine"}},
        )

    def mismatch(self) -> str | None:
        """Why the stored index cannot be used with the current settings, or None."""
        stored = {k: v for k, v in (self.collection.metadata or {}).items() if not k.startswith("hnsw:")}
        wanted = self.manifest()
        diffs = [
            f"{k}: index has {stored.get(k)!r}, settings want {v!r}"
            for k, v in wanted.items()
            if str(stored.get(k)) != str(v)
        ]
        return "; ".join(diffs) or None

    def check(self) -> None:
        if why := self.mismatch():
            raise IndexMismatchError(
                f"the index in collection {self.name!r} was built differently ({why}). "
                "Run `assistant ingest --rebuild` to rebuild it; vectors are never mixed."
            )

    def reset(self) -> None:
        """Drop every record and start an empty collection with the current manifest."""
        with contextlib.suppress(Exception):  # absent already
            self.client.delete_collection(self.name)
        self.collection = self._open()

    # -- reading ------------------------------------------------------------------------------
    def count(self) -> int:
        return self.collection.count()

    def records(
        self, include: Iterable[str] = ("documents", "metadatas"), where: dict[str, Any] | None = None
    ) -> Iterable[dict[str, Any]]:
        """Every record (or those matching `where`), in batches, as {id, document, metadata}."""
        offset = 0
        while True:
            got = self.collection.get(include=list(include), where=where, limit=MAX_BATCH, offset=offset)
            ids = got["ids"]
            for i, rid in enumerate(ids):
                yield {
                    "id": rid,
                    "document": got["documents"][i] if got.get("documents") else None,
                    "metadata": got["metadatas"][i] if got.get("metadatas") else {},
                }
            if len(ids) < MAX_BATCH:
                return
            offset += MAX_BATCH

    def files(self) -> dict[str, dict[str, Any]]:
        """path -> {hash, source, units, vectors} for every indexed file."""
        out: dict[str, dict[str, Any]] = {}
        for rec in self.records(include=("metadatas",)):
            m = rec["metadata"]
            f = out.setdefault(
                m["path"], {"hash": m["file_hash"], "source": m["source"], "units": set(), "vectors": 0}
            )
            f["units"].add(m["unit_id"])
            f["vectors"] += 1
        for f in out.values():
            f["units"] = len(f["units"])
        return out

    def ids_for(self, path: str) -> set[str]:
        return set(self.collection.get(where={"path": path}, include=[])["ids"])

    # -- writing ------------------------------------------------------------------------------
    def _delete(self, ids: list[str]) -> None:
        for i in range(0, len(ids), MAX_BATCH):
            self.collection.delete(ids=ids[i : i + MAX_BATCH])

    def delete_file(self, path: str) -> int:
        ids = sorted(self.ids_for(path))
        self._delete(ids)
        return len(ids)

    def write_file(self, path: str, digest: str, units: list[Unit], vectors: Any) -> None:
        """Replace a file's records by these, all or nothing."""
        ids, docs, metas = [], [], []
        for unit in units:
            for role, texts in (("piece", unit.pieces), ("key", unit.keys)):
                for j, text in enumerate(texts):
                    ids.append(f"{unit.id}:{role[0]}{j}")
                    docs.append(text)
                    metas.append(
                        {
                            "unit_id": unit.id,
                            "source": unit.source,
                            "path": unit.path,
                            "file_hash": digest,
                            "doc_title": unit.doc_title,
                            "title": unit.title,
                            "kind": unit.kind,
                            "position": unit.position,
                            "role": role,
                            "n": j,
                            # The whole answer rides on the first piece: a hit shows it without a 2nd lookup.
                            **({"unit_text": unit.text} if role == "piece" and j == 0 else {}),
                        }
                    )
        old = self.ids_for(path)
        try:
            for i in range(0, len(ids), MAX_BATCH):
                s = slice(i, i + MAX_BATCH)
                self.collection.upsert(
                    ids=ids[s], documents=docs[s], metadatas=metas[s], embeddings=vectors[s]
                )
        except Exception:
            fresh = sorted(set(ids) - old)  # roll back what this call added; old records stay
            self._delete(fresh)
            raise
        stale = sorted(old - set(ids))
        self._delete(stale)


def ingest(
    store: Store,
    paths: Iterable[Path],
    *,
    max_bytes: int | None = None,
    progress: bool = True,
    on_skip: Callable[[str, str], None] | None = None,
) -> IngestReport:
    """Bring the store in line with the files under `paths` (plus dropping files gone from disk)."""
    paths = [Path(p).expanduser() for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:  # checked before anything changes
        raise FileNotFoundError(f"corpus path does not exist: {', '.join(missing)}")
    start = time.perf_counter()
    report = IngestReport()
    indexed = store.files()
    warn = on_skip or (lambda name, why: log.warning("skipped %s: %s", name, why))

    def skip(name: str, why: str) -> None:
        report.skipped.append((name, why))
        warn(name, why)

    # Files removed from disk leave the index.
    for path in sorted(indexed):
        if not Path(path).exists():
            store.delete_file(path)
            report.removed.append(indexed[path]["source"])

    # Parse everything first (cheap), then embed with one progress bar over all new chunks.
    todo: list[tuple[Path, str, list[Unit]]] = []
    for path in iter_files(paths):
        key = str(path.resolve())
        try:
            digest = file_hash(path)
        except OSError as exc:
            skip(path.name, f"unreadable ({exc.strerror or exc})")
            continue
        if key in indexed and indexed[key]["hash"] == digest:
            report.unchanged.append(path.name)
            continue
        try:
            units = store.chunker.load(path, max_bytes)
        except LoadError as exc:
            skip(path.name, str(exc).split(": ", 1)[-1])
            continue
        todo.append((path, digest, units))

    total = sum(len(u.pieces) + len(u.keys) for _, _, units in todo for u in units)
    bar = _progress(total, progress)
    for path, digest, units in todo:
        key = str(path.resolve())
        texts = [t for u in units for t in (*u.pieces, *u.keys)]
        try:
            vectors = []
            step = 8 * store.embedder.batch_size  # big calls: the embedder sorts by length within one
            for i in range(0, len(texts), step):
                batch = texts[i : i + step]
                vectors.extend(store.embedder.embed(batch))
                bar.update(len(batch))
            store.write_file(key, digest, units, vectors)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the rest
            skip(path.name, f"failed while indexing: {exc}")
            continue
        (report.updated if key in indexed else report.added).append(path.name)
        report.units += len(units)
        report.vectors += len(texts)
    bar.close()
    report.seconds = time.perf_counter() - start
    return report


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="chunk", desc="embedding", disable=not enabled or total == 0)
