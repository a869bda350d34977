"""The int8 weights of a model folder, quantized once and kept in the cache beside the bf16
conversions (`llm_int8_cache`): later starts read them instead of quantizing again (the float model
is still loaded; packing the int8 weights for the CPU kernels is what a start still pays).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.llm.quantize import (
    QCONFIG,
    Int8CacheError,
    Int8Weights,
    install_int8,
    int8_engine,
    int8_weights,
    quiet_deprecations,
)

log = logging.getLogger(__name__)

# Files whose bytes decide the weights a folder loads to (config.json: which layers, tied or not).
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_STALE_TMP_SECONDS = 3600  # a temporary file this old is a killed start's, not one being written
# Bump when what an int8 cache file holds, or how its contents become layers, changes: older files then
# no longer match and are replaced.
CACHE_FORMAT = 1


def _cache_label(folder: Path) -> str:
    """The start of the folder's int8 file name: the folder's name, or for a Hugging Face snapshot (a
    folder named by its commit) the repository's, so a newer snapshot replaces the older one's file."""
    folder = folder.resolve()
    name = folder.name
    if folder.parent.name == "snapshots" and folder.parent.parent.name.startswith("models--"):
        name = folder.parent.parent.name.removeprefix("models--")
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "model"


def int8_cache_file(folder: Path, cache_dir: Path, dtype: Any = "float32") -> tuple[Path, dict[str, Any]]:
    """Where the int8 weights of the model in `folder` are kept, and what they are computed from.

    The name carries a hash of everything that could change them: the folder's weight files (names,
    sizes, modification times and, for a Hugging Face snapshot's links, the content-named blobs they
    point to), the dtype the float model is loaded in, torch's and transformers' versions, the int8
    engine and the cache format. Any change gives another name, so a stale file is never read.
    """
    import transformers

    files = []
    for path in sorted(Path(folder).iterdir()):
        name = path.name
        if path.is_file() and (
            name.endswith(_WEIGHT_SUFFIXES) or name.endswith(".index.json") or name == "config.json"
        ):
            st = path.stat()
            files.append([name, st.st_size, st.st_mtime_ns, Path(os.path.realpath(path)).name])
    meta = {
        **cache_identity(),
        "transformers": transformers.__version__,
        "dtype": str(dtype).replace("torch.", ""),
        "files": files,
    }
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir / "models" / f"{_cache_label(folder)}-int8-{key}.pt", meta


def cache_identity() -> dict[str, Any]:
    """What, besides the source weights, decides the int8 weights a cache holds and how they are read."""
    import torch

    return {
        "format": CACHE_FORMAT,
        "torch": str(torch.__version__),
        "engine": int8_engine(),
        "qconfig": QCONFIG,
    }


def save_int8(path: Path, weights: Int8Weights, meta: dict[str, Any]) -> int:
    """Write int8 weights and what they were computed from to `path` atomically: into a temporary file
    beside it, then renamed, so a start killed while writing leaves no half file under that name.
    Returns the bytes written."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "meta": meta,
        "layers": {name: {"weight": w, "bias": b} for name, (w, b) in weights.items()},
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.stat().st_size


def load_int8(path: Path, meta: dict[str, Any]) -> Int8Weights:
    """Int8 weights saved by `save_int8` for exactly `meta`; Int8CacheError if the file is not that.

    Read with `weights_only=True`: torch's restricted unpickler rebuilds quantized tensors (checked with
    torch 2.13), so the file can hold tensors, dicts and plain values but never run code.
    """
    import torch

    try:
        with quiet_deprecations():
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a truncated or corrupt file, whatever torch says about it
        raise Int8CacheError(f"unreadable ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("layers"), dict):
        raise Int8CacheError("not an int8 weights file")
    if payload.get("meta") != meta:
        raise Int8CacheError("computed from other weights or by another torch")
    weights: Int8Weights = {}
    for name, layer in payload["layers"].items():
        if not isinstance(layer, dict) or "weight" not in layer:
            raise Int8CacheError(f"{name}: no weight")
        weights[name] = (layer["weight"], layer.get("bias"))
    return weights


def quantize_cached(model: Any, folder: Path, cache_dir: Path) -> tuple[int, bool]:
    """Int8 layers in place of `model`'s linear layers (the model loaded from `folder`), read from the
    int8 cache when it holds them, else quantized and saved there. Returns (int8 layers, from cache).

    A cache file that cannot be used (truncated, corrupt, other layers) is logged, deleted and replaced;
    one that cannot be written leaves the model quantized all the same.
    """
    dtype = next(model.parameters()).dtype
    path, meta = int8_cache_file(folder, cache_dir, dtype)
    if path.exists():
        try:
            return install_int8(model, load_int8(path, meta)), True
        except Exception as exc:  # noqa: BLE001 - whatever is wrong with the file, quantize afresh
            log.warning("LLM: int8 cache %s unusable (%s): deleted, quantizing afresh", path, exc)
            with contextlib.suppress(OSError):  # a read-only cache: quantize all the same
                path.unlink(missing_ok=True)
    weights = int8_weights(model)
    layers = install_int8(model, weights)
    try:
        size = save_int8(path, weights, meta)
    except Exception as exc:  # noqa: BLE001 - a read-only or full disk costs the next start time, no more
        log.warning("LLM: could not save the int8 weights to %s (%s); the next start quantizes", path, exc)
    else:
        log.warning("LLM: int8 weights saved to %s (%.0f MB) for later starts", path, size / 1e6)
        _drop_stale_int8(path, folder)
    return layers, False


def _drop_stale_int8(current: Path, folder: Path) -> None:
    """Delete the folder's int8 files under other keys (older weights, an older torch) and the temporary
    files of starts killed while saving."""
    pattern = re.compile(re.escape(_cache_label(folder)) + r"-int8-[0-9a-f]{16}\.pt(\..+\.tmp)?")
    now = time.time()
    for path in current.parent.iterdir():
        if path == current or not pattern.fullmatch(path.name):
            continue
        with contextlib.suppress(OSError):
            if path.suffix == ".tmp" and now - path.stat().st_mtime < _STALE_TMP_SECONDS:
                continue  # another start may be writing it right now
            path.unlink()
            log.info("LLM: removed the stale int8 cache %s", path.name)
