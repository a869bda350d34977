"""Incremental, idempotent ingest: bring the store in line with files on disk.

Content hashes decide: unchanged files are skipped, changed files replaced (atomically, see index.py),
files gone from disk deleted, but only this data directory's files under the folders it was given:
other hosts sharing a Chroma server, and uploads when the corpus is ingested, are never touched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.knowledge.corpus import Unit
from assistant.knowledge.errors import LoadError
from assistant.knowledge.files import iter_files
from assistant.knowledge.index import Store, file_hash

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (file, why): left out of a rebuild
    repaired: int = 0  # documents whose interrupted write an earlier run left behind
    units: int = 0  # units written by this run
    vectors: int = 0  # records written: pieces plus keys
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.repaired)

    def summary(self) -> str:
        dropped = f", {len(self.dropped)} dropped" if self.dropped else ""
        repaired = f"; repaired {self.repaired} interrupted write(s)" if self.repaired else ""
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.removed)} removed, {len(self.skipped)} skipped{dropped}; {self.units} units "
            f"({self.vectors} vectors) written in {self.seconds:.1f} s{repaired}"
        )


def _under(path: str, roots: list[Path]) -> bool:
    p = Path(path)
    return any(p == r or p.is_relative_to(r) for r in roots)


def _files_with_keys(paths: list[Path]) -> Iterable[tuple[Path, str]]:
    """(file, key): the key is the file's path under the folder given (prefixed by that folder's
    name), or `<parent folder>/<name>` for a file given alone; the same on every machine."""
    seen: set[Path] = set()
    for root in paths:
        base = root.parent if root.is_file() else root
        for path in iter_files([root]):
            if (resolved := path.resolve()) in seen:
                continue
            seen.add(resolved)
            yield path, Path(base.name, path.relative_to(base)).as_posix()


def ingest(
    store: Store,
    paths: Iterable[Path],
    *,
    max_bytes: int | None = None,
    progress: bool = True,
    on_skip: Callable[[str, str], None] | None = None,
) -> IngestReport:
    """Bring the store in line with the files under `paths` (dropping this owner's files gone from
    disk under them)."""
    paths = [Path(p).expanduser() for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:  # checked before anything changes
        raise FileNotFoundError(f"corpus path does not exist: {', '.join(missing)}")
    roots = [p.resolve() for p in paths]
    start = time.perf_counter()
    report = IngestReport()
    warn = on_skip or (lambda name, why: log.warning("skipped %s: %s", name, why))

    def skip(name: str, why: str) -> None:
        report.skipped.append((name, why))
        warn(name, why)

    with store.lock:
        report.repaired = store.repair()
        indexed = store.own_files()
        # This owner's files under the given folders that are gone from disk leave the index.
        for path in sorted(indexed):
            if _under(path, roots) and not Path(path).exists():
                store.delete_file(path)
                report.removed.append(indexed[path]["source"])

        # Parse everything first (cheap), then embed with one progress bar over all new chunks.
        todo: list[tuple[str, str, str, list[Unit]]] = []
        for path, key in _files_with_keys(paths):
            resolved = str(path.resolve())
            try:
                digest = file_hash(path)
            except OSError as exc:
                skip(path.name, f"unreadable ({exc.strerror or exc})")
                continue
            if resolved in indexed:
                if indexed[resolved]["hash"] == digest:
                    report.unchanged.append(path.name)
                    continue
                key = indexed[resolved]["key"]  # a document keeps its key (and unit ids) for life
            try:
                units = store.chunker.load(path, max_bytes, key=key)
            except LoadError as exc:
                skip(path.name, str(exc).split(": ", 1)[-1])
                continue
            todo.append((resolved, key, digest, units))

        total = sum(len(u.pieces) + len(u.keys) for *_, units in todo for u in units)
        bar = _progress(total, progress)
        for resolved, key, digest, units in todo:
            name = Path(resolved).name
            texts = [t for u in units for t in (*u.pieces, *u.keys)]
            try:
                vectors = []
                step = 8 * store.embedder.batch_size  # big calls: the embedder sorts by length within one
                for i in range(0, len(texts), step):
                    batch = texts[i : i + step]
                    vectors.extend(store.embedder.embed(batch))
                    bar.update(len(batch))
                store.write_file(resolved, key, digest, units, vectors)
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the rest
                skip(name, f"failed while indexing: {exc}")
                continue
            (report.updated if resolved in indexed else report.added).append(name)
            report.units += len(units)
            report.vectors += len(texts)
        bar.close()
    report.seconds = time.perf_counter() - start
    return report


def rebuild(store: Store, paths: list[Path], **kw: Any) -> IngestReport:
    """Drop the index and build it again from `paths` plus every other file this owner had indexed
    (uploads included) that is still on disk; the report names whatever could not come back."""
    missing = [str(p) for p in paths if not Path(p).expanduser().exists()]
    if missing:  # checked before anything is dropped
        raise FileNotFoundError(f"corpus path does not exist: {', '.join(missing)}")
    with store.lock:
        before = store.indexed_before_rebuild()
        store.reset()
        roots = [Path(p).expanduser().resolve() for p in paths]
        extra = [
            Path(f["path"])
            for f in before
            if f["owner"] == store.owner and not _under(f["path"], roots) and Path(f["path"]).is_file()
        ]
        report = ingest(store, [*paths, *sorted(set(extra))], **kw)
        for f in before:
            if f["owner"] != store.owner:
                report.dropped.append((f["source"], f"indexed by another host (owner {f['owner']})"))
            elif not Path(f["path"]).is_file():
                report.dropped.append((f["source"], f"no longer on disk ({f['path']})"))
        return report


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="chunk", desc="embedding", disable=not enabled or total == 0)
