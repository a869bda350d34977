"""Shared fixtures. The whole suite runs with non-loopback sockets blocked (see pyproject addopts)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.settings import PROJECT_DIR, Settings

CORPUS = PROJECT_DIR / "corpus"


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory):
    """The real MiniLM, memoised per text: many tests ingest the same corpus into fresh stores."""
    import numpy as np

    from assistant.embedder import Embedder

    class MemoEmbedder(Embedder):
        memo: dict[str, np.ndarray] = {}

        def embed(self, texts, progress=False):
            missing = list(dict.fromkeys(t for t in texts if t not in self.memo))
            if missing:
                self.memo.update(zip(missing, super().embed(missing), strict=True))
            return np.stack([self.memo[t] for t in texts]) if texts else super().embed([])

    return MemoEmbedder("all-MiniLM-L6-v2", "cpu", stamp_dir=tmp_path_factory.mktemp("stamps"))


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", corpus_paths=[CORPUS])


@pytest.fixture()
def corpus_copy(tmp_path: Path) -> Path:
    """A private, writable copy of the corpus for tests that edit files."""
    dest = tmp_path / "corpus"
    shutil.copytree(CORPUS, dest)
    for p in dest.iterdir():
        p.chmod(0o644)
    return dest


@pytest.fixture()
def make_assistant(embedder):
    from assistant.core import Assistant

    def make(settings: Settings, **kw):
        return Assistant(settings, embedder=embedder, **kw)

    return make


@pytest.fixture(scope="session")
def indexed(tmp_path_factory: pytest.TempPathFactory, embedder):
    """One Assistant over the shipped corpus, ingested once for the read-only tests."""
    from assistant.core import Assistant

    s = Settings(data_dir=tmp_path_factory.mktemp("indexed"), corpus_paths=[CORPUS])
    a = Assistant(s, embedder=embedder)
    a.ingest()
    return a
