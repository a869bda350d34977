"""The Chroma store: manifest, and per-document generations that make every write atomic (the client
and the embedding function are chroma.py's).

Two collections. `<name>` holds the chunks (an embedded piece or key of a unit); each record's id is
`<unit id>:<generation>:<p|k><n>` and its metadata names its unit, document and generation.
`<name>_files` holds one small *marker* record per document (path, display name, owner, content hash,
current generation) plus one `__version__` record that every change rewrites.

Replacing a document: mark it dirty, write the new version under a new generation, switch the marker
to it in one record write, bump the version, delete the old generation, clear the mark. Readers
(retrieval, `files()`, the documents list) only see a document's current generation, so a failure or a
kill at any point leaves the old version or the new one, never a mix; the orphans a killed write
leaves behind are deleted by the next ingest (`repair`), and a document never counts as indexed until
its switch is written. Every marker names its *owner* (this data directory, or the shared uploads
folder of a deployment's replicas), so two hosts sharing one Chroma server only ever delete their own
documents, while the replicas of one deployment list, replace and remove the same ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import chromadb

from assistant.knowledge.chroma import ChromaEmbedding
from assistant.knowledge.corpus import Chunker, Unit
from assistant.knowledge.embedder import Embedder
from assistant.knowledge.errors import IndexMismatchError

MAX_BATCH = 1000  # records per Chroma call; well under every client's limit
VERSION_ID = "__version__"  # the marker record every change rewrites
WRITE_GRACE_S = 600  # a dirty mark this old is an interrupted write even if its pid is alive again
_ONE = [[1.0]]  # markers are never searched by vector; Chroma wants one anyway
# Crash tests name a point of a write here and the process kills itself (SIGKILL) on reaching it, so a
# test knows exactly what a kill left instead of racing a timer (tests/test_integrity_kill.py).
KILL_AT_ENV = "ASSISTANT_TEST_KILL_AT"
WRITE_POINTS = ("marked", "chunks", "switched", "bumped", "old-deleted", "repairing")


def _checkpoint(point: str) -> None:
    if os.environ.get(KILL_AT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def owner_id(data_dir: Path, shared: Path | None = None) -> str:
    """The owner recorded on every document indexed from here, made once and kept on a volume (a host
    name changes with every container): in the data directory, or in the replicas' shared uploads
    folder (`shared`), seeded with this data directory's id if it has one (its documents stay its own)."""
    path = Path(shared) / ".index-owner" if shared else Path(data_dir) / "index-owner"
    seed = Path(data_dir) / "index-owner"
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError), path.open("x", encoding="utf-8") as f:
        mine = seed.read_text(encoding="utf-8").strip() if shared and seed.is_file() else ""
        f.write(mine or uuid.uuid4().hex)
    for _ in range(50):  # another process may be between creating and writing it
        if owner := path.read_text(encoding="utf-8").strip():
            return owner
        threading.Event().wait(0.02)
    raise RuntimeError(f"{path} is empty: delete it and run again")


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest(*parts: str, n: int = 16) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:n]


HOST = socket.gethostname()


def _writer() -> dict[str, Any]:
    return {"writer": os.getpid(), "host": HOST, "since": time.time()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """One Chroma collection of chunks, one of document markers, and the manifest that says how the
    chunks were made. Writes take `lock` (uploads, removals and ingests may come from many threads)."""

    def __init__(
        self,
        client: chromadb.ClientAPI,
        name: str,
        embedder: Embedder,
        chunker: Chunker,
        owner: str = "local",
    ):
        self.client = client
        self.name = name
        self.embedder = embedder
        self.chunker = chunker
        self.owner = owner
        self.lock = threading.RLock()
        self.ef = ChromaEmbedding(embedder)
        self.collection, self.state = self._open()

    # -- manifest -----------------------------------------------------------------------------
    def manifest(self) -> dict[str, str | int]:
        return {"embedder": self.embedder.id, "dim": self.embedder.dim, **self.chunker.params}

    def _open(self) -> tuple[Any, Any]:
        chunks = self.client.get_or_create_collection(
            self.name,
            embedding_function=self.ef,
            metadata=self.manifest(),
            configuration={"hnsw": {"space": "cosine"}},
        )
        state = self.client.get_or_create_collection(f"{self.name}_files", embedding_function=self.ef)
        return chunks, state

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
        """Drop every record (every owner's) and start empty collections with the current manifest."""
        with self.lock:
            for name in (self.name, f"{self.name}_files"):
                with contextlib.suppress(Exception):  # absent already
                    self.client.delete_collection(name)
            self.collection, self.state = self._open()
            self.bump()

    # -- reading ------------------------------------------------------------------------------
    def count(self) -> int:
        return self.collection.count()

    def records(
        self,
        include: Iterable[str] = ("documents", "metadatas"),
        where: dict[str, Any] | None = None,
        collection: Any = None,
    ) -> Iterable[dict[str, Any]]:
        """Every record (or those matching `where`), in batches, as {id, document, metadata} (and
        `embedding` when included)."""
        coll = collection if collection is not None else self.collection
        offset = 0
        while True:
            got = coll.get(include=list(include), where=where, limit=MAX_BATCH, offset=offset)
            ids = got["ids"]
            for i, rid in enumerate(ids):
                yield {
                    "id": rid,
                    "document": got["documents"][i] if got.get("documents") else None,
                    "metadata": got["metadatas"][i] if got.get("metadatas") else {},
                    **({"embedding": got["embeddings"][i]} if got.get("embeddings") is not None else {}),
                }
            if len(ids) < MAX_BATCH:
                return
            offset += MAX_BATCH

    def version(self) -> str:
        """A token that changes whenever any process changes what readers see (one small read)."""
        try:
            got = self.state.get(ids=[VERSION_ID], include=["metadatas"])
        except Exception:  # noqa: BLE001 - dropped and made again by a rebuild elsewhere: reopen once
            self.collection, self.state = self._open()
            got = self.state.get(ids=[VERSION_ID], include=["metadatas"])
        return str(got["metadatas"][0]["token"]) if got["ids"] else ""

    def markers(self) -> dict[str, dict[str, Any]]:
        """doc id -> marker metadata, for every document of every owner (half-written ones included)."""
        return {
            r["id"]: r["metadata"]
            for r in self.records(include=("metadatas",), collection=self.state)
            if r["id"] != VERSION_ID
        }

    def files(self) -> dict[str, dict[str, Any]]:
        """doc id -> {path, source, owner, hash, gen, units, vectors} for every indexed document."""
        return {
            doc: {
                "path": m["path"],
                "source": m["source"],
                "owner": m["owner"],
                "hash": m["file_hash"],
                "gen": m["gen"],
                "key": m["key"],
                "units": m["units"],
                "vectors": m["vectors"],
            }
            for doc, m in self.markers().items()
            if m.get("gen")
        }

    def own_files(self) -> dict[str, dict[str, Any]]:
        """path -> info for the documents this data directory indexed."""
        return {f["path"]: f for f in self.files().values() if f["owner"] == self.owner}

    def doc_id(self, path: str) -> str:
        return _digest(self.owner, path)

    def ids_for(self, path: str) -> set[str]:
        """Every chunk record of one of this owner's documents, whatever its generation."""
        return set(self.collection.get(where={"doc": self.doc_id(path)}, include=[])["ids"])

    # -- writing ------------------------------------------------------------------------------
    def bump(self) -> None:
        self.state.upsert(ids=[VERSION_ID], embeddings=_ONE, metadatas=[{"token": uuid.uuid4().hex}])

    def _mark(self, doc: str, meta: dict[str, Any]) -> None:
        self.state.upsert(ids=[doc], embeddings=_ONE, metadatas=[meta])

    def _delete_where(self, where: dict[str, Any]) -> int:
        ids = sorted(self.collection.get(where=where, include=[])["ids"])
        for i in range(0, len(ids), MAX_BATCH):
            self.collection.delete(ids=ids[i : i + MAX_BATCH])
        return len(ids)

    def delete_file(self, path: str) -> int:
        """Remove one of this owner's documents; returns the number of chunk records deleted."""
        doc = self.doc_id(path)
        with self.lock:
            got = self.state.get(ids=[doc], include=["metadatas"])
            if not got["ids"]:
                return 0
            self._mark(doc, {**got["metadatas"][0], "gen": "", "dirty": True, **_writer()})
            self.bump()  # readers stop seeing it now; the records go next
            n = self._delete_where({"doc": doc})
            self.state.delete(ids=[doc])
            return n

    def write_file(self, path: str, key: str, digest: str, units: list[Unit], vectors: Any) -> None:
        """Replace one document's records by these; readers see the old version or the new, whole."""
        doc = self.doc_id(path)
        gen = _digest(doc, digest, n=12)
        ids, docs, metas = [], [], []
        for unit in units:
            for role, texts in (("piece", unit.pieces), ("key", unit.keys)):
                for j, text in enumerate(texts):
                    ids.append(f"{unit.id}:{gen}:{role[0]}{j}")
                    docs.append(text)
                    metas.append(
                        {
                            "unit_id": unit.id,
                            "doc": doc,
                            "gen": gen,
                            "source": unit.source,
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
        source = units[0].source if units else Path(path).name
        with self.lock:
            got = self.state.get(ids=[doc], include=["metadatas"])
            old = got["metadatas"][0] if got["ids"] else None
            current = str(old["gen"]) if old else ""
            marker = {
                "path": path,
                "source": source,
                "key": key,
                "owner": self.owner,
                "file_hash": "",
                "units": 0,
                "vectors": 0,
                **(old or {}),
                "gen": current,
                "dirty": True,
                **_writer(),
            }
            self._mark(doc, marker)  # a kill from here on leaves orphans that `repair` finds
            _checkpoint("marked")
            try:
                for i in range(0, len(ids), MAX_BATCH):
                    s = slice(i, i + MAX_BATCH)
                    self.collection.upsert(
                        ids=ids[s], documents=docs[s], metadatas=metas[s], embeddings=vectors[s]
                    )
                    _checkpoint("chunks")
            except BaseException:  # Ctrl-C too: the old version stays the one readers see
                if gen != current:
                    with contextlib.suppress(Exception):
                        self._delete_where({"$and": [{"doc": doc}, {"gen": gen}]})
                raise
            switched = {**marker, "source": source, "key": key, "gen": gen, "file_hash": digest}
            self._mark(doc, {**switched, "units": len(units), "vectors": len(ids)})  # the switch
            _checkpoint("switched")
            self.bump()
            _checkpoint("bumped")
            if current and current != gen:
                self._delete_where({"$and": [{"doc": doc}, {"gen": current}]})
            _checkpoint("old-deleted")
            self._mark(doc, {**switched, "units": len(units), "vectors": len(ids), "dirty": False})

    def repair(self) -> int:
        """Delete what interrupted writes of this owner left behind (records of a generation that never
        became current, or an old one never deleted); returns the number of documents repaired."""
        repaired = 0
        with self.lock:
            for doc, m in self.markers().items():
                if m.get("owner") != self.owner or not m.get("dirty"):
                    continue
                writer, since = int(m.get("writer") or 0), float(m.get("since") or 0)
                elsewhere = m.get("host", HOST) != HOST  # a replica on another machine: its pid says nothing
                busy = elsewhere or (writer not in (0, os.getpid()) and _alive(writer))
                if busy and time.time() - since < WRITE_GRACE_S:
                    continue  # another process (or replica) of this owner is writing it right now
                current = str(m.get("gen") or "")
                if current:
                    self._delete_where({"$and": [{"doc": doc}, {"gen": {"$ne": current}}]})
                    _checkpoint("repairing")
                    self._mark(doc, {**m, "dirty": False})
                else:
                    self._delete_where({"doc": doc})
                    self.state.delete(ids=[doc])
                repaired += 1
            if repaired:
                self.bump()
        return repaired

    def indexed_before_rebuild(self) -> list[dict[str, Any]]:
        """What is indexed now ({path, source, owner}), read before a rebuild drops it: from the
        markers, or from the chunks of an index built before markers existed."""
        if files := self.files():
            return list(files.values())
        seen: dict[str, dict[str, Any]] = {}
        for rec in self.records(include=("metadatas",)):
            m = rec["metadata"]
            if "path" in m:
                seen.setdefault(m["path"], {"path": m["path"], "source": m["source"], "owner": self.owner})
        return list(seen.values())
