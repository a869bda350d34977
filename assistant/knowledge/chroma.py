"""Chroma itself: the client (embedded under the data directory, or a Chroma server's HTTP client) and
our embedder as the collection's embedding function, so Chroma never fetches a model of its own."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import chromadb
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.config import Settings as ChromaSettings

from assistant.knowledge.embedder import Embedder
from assistant.settings import Settings


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
