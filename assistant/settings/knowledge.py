"""Where the index lives, how documents are cut and embedded, how a search scores them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from assistant.settings.paths import PROJECT_DIR


class KnowledgeSettings(BaseModel):
    # --- storage -------------------------------------------------------------------------------
    data_dir: Path = Field(
        PROJECT_DIR / "data",
        description="Where the Chroma store, converted models, caches and uploads live.",
    )
    corpus_paths: list[Path] = Field(
        default_factory=lambda: [PROJECT_DIR / "corpus"],
        description="Files or folders indexed by `assistant ingest` when no paths are given.",
    )
    shared_uploads_dir: Path | None = Field(
        None,
        description="Uploaded documents on storage every app replica mounts at this same path (a shared "
        "volume, NFS). Set it on every replica of one deployment: any replica then lists, searches, "
        "serves and removes any upload, and the replicas share the index's documents (an owner id kept "
        "in that folder) instead of each owning its own. Default: data_dir/uploads, this host's own.",
    )
    collection: str = Field("dl_qa", description="Name of the Chroma collection holding the chunks.")
    chroma_mode: Literal["embedded", "server"] = Field(
        "embedded",
        description="`embedded`: a PersistentClient under data_dir. `server`: a Chroma server at chroma_url.",
    )
    chroma_url: str | None = Field(
        None,
        description="URL of a Chroma server (e.g. http://127.0.0.1:8000). Setting it selects server mode.",
    )

    # --- embedder ------------------------------------------------------------------------------
    embedder: str = Field(
        "all-MiniLM-L6-v2",
        description="Sentence-transformers model: `all-MiniLM-L6-v2` (packaged, hash-checked), a local "
        "folder, or a model id already in the Hugging Face cache.",
    )
    embedder_device: str = Field("auto", description="`auto` (cuda if present, else cpu), `cpu`, `cuda`, …")
    embed_batch_size: int = Field(32, ge=1, description="Texts embedded per batch during ingest.")

    # --- chunking ------------------------------------------------------------------------------
    chunk_max_tokens: int = Field(
        256,
        ge=32,
        description="Most word pieces in one embedded chunk; clamped to the embedder's input window so "
        "no text is silently cut off.",
    )
    chunk_overlap_tokens: int = Field(
        24, ge=0, description="Word pieces shared by consecutive pieces of a long answer."
    )
    max_file_mb: float = Field(20.0, gt=0, description="Files larger than this are skipped at ingest.")

    # --- retrieval -----------------------------------------------------------------------------
    retrieval_k: int = Field(5, ge=1, description="Results returned by a search.")
    candidates: int = Field(
        60, ge=1, description="Vectors (and BM25 pieces) fetched before fusion; a unit has several vectors."
    )
    vector_weight: float = Field(
        0.8, ge=0, description="Weight of the best cosine similarity among a unit's vectors in the score."
    )
    bm25_weight: float = Field(
        0.2, ge=0, description="Weight of the unit's BM25 score, divided by the query's best, in the score."
    )
    bm25_saturation: float = Field(
        5.0, gt=0, description="BM25 score counted as full evidence in a result's absolute `relevance`."
    )
    exact_search_max_records: int = Field(
        100_000,
        ge=0,
        description="Up to this many records, vector search is exact (a matrix product over vectors read "
        "with each index version) instead of Chroma's approximate HNSW, which can miss a just-added "
        "vector and, in another process, lags behind writes. Memory: 4 bytes per dimension per record "
        "(150 MB at the limit with MiniLM's 384); 0: HNSW only.",
    )
