"""The int8 weights of a CPU model are quantized once and kept in the cache: later loads read them back
and give the very same layers; a cache that cannot be used is replaced, never a crash."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from assistant.llm import int8_cache, models
from assistant.llm.int8_cache import save_int8
from assistant.llm.quantize import int8_weights, quantize_int8, quantized_layers

LOGGER = "assistant.llm.models"


def int8_settings(settings, folder: Path):
    return settings.model_copy(update={"llm_model": str(folder), "llm_device": "cpu", "llm_quantize": "int8"})


def load(s, caplog) -> tuple[object, str]:
    """The loaded model and its int8 log line."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        model, _, _ = models.load_model(models.resolve_model(s), s)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("LLM: int8 weights,")]
    assert len(lines) == 1, caplog.text
    return model, lines[0]


def saved_afresh(line: str, caplog) -> bool:
    """The load quantized the float weights and saved the result."""
    saved = [r for r in caplog.records if "for later starts" in r.getMessage()]
    return " layers quantized in " in line and len(saved) == 1


def cache_files(s) -> list[Path]:
    return sorted((s.cache_dir / "models").glob("*-int8-*"))


def logits(model) -> torch.Tensor:
    ids = torch.tensor([[1, 20, 30, 40, 50, 60], [1, 70, 80, 90, 100, 110]])
    with torch.inference_mode():
        batch = model(ids).logits
        one = model(ids[:1, :1]).logits  # one row: the layers' fast path
    return torch.cat([batch.flatten(), one.flatten()])


def structure(model) -> list[tuple[str, str]]:
    return [(name, m._get_name()) for name, m in model.named_modules()]


def float_model(folder: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, local_files_only=True).eval()


@pytest.fixture()
def model_copy(tiny_model_dir, tmp_path) -> Path:
    """A private copy of the tiny model, for tests that change its files."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "tiny-copy"))


@pytest.fixture(scope="module")
def qwen_like_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model shaped like Qwen2.5's small ones: lm_head tied to the embeddings, and biases on
    the attention's q/k/v projections (random, so a lost bias shows)."""
    from transformers import AutoConfig, LlamaForCausalLM

    config = AutoConfig.from_pretrained(tiny_model_dir)
    config.tie_word_embeddings = True
    config.attention_bias = True
    torch.manual_seed(1)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.Linear) and layer.bias is not None:
                layer.bias.normal_()
    folder = tmp_path_factory.mktemp("tiny-qwen-like")
    model.save_pretrained(folder)
    for p in tiny_model_dir.iterdir():
        if p.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            shutil.copy(p, folder / p.name)
    return folder


def test_first_load_quantizes_and_saves_later_loads_read_the_same_layers(tiny_model_dir, settings, caplog):
    s = int8_settings(settings, tiny_model_dir)
    first, line = load(s, caplog)
    assert saved_afresh(line, caplog)
    [cached] = cache_files(s)
    assert cached.name.startswith(f"{tiny_model_dir.name}-int8-") and cached.suffix == ".pt"
    second, line = load(s, caplog)
    assert "read from the int8 cache" in line
    assert cache_files(s) == [cached]
    assert structure(second) == structure(first)
    linears = sum(type(m) is nn.Linear for m in float_model(tiny_model_dir).modules())
    assert quantized_layers(second) == quantized_layers(first) == linears == 2 * 7 + 1  # lm_head too
    assert torch.equal(logits(second), logits(first))


def test_tied_lm_head_and_biases_come_back_alike_from_the_cache(qwen_like_model_dir, settings, caplog):
    s = int8_settings(settings, qwen_like_model_dir)
    first, _ = load(s, caplog)
    second, line = load(s, caplog)
    assert "read from the int8 cache" in line
    for model in (first, second):
        assert model.lm_head._get_name() == "TokenScaledInt8Linear"
        assert model.model.embed_tokens.weight.dtype == torch.float32  # the lookup keeps the float copy
        assert model.model.layers[0].self_attn.q_proj.bias.abs().sum() > 0
    assert structure(second) == structure(first)
    assert quantized_layers(second) == quantized_layers(first) == 2 * 7 + 1
    assert torch.equal(logits(second), logits(first))


@pytest.mark.filterwarnings("ignore:.*torch.ao.quantization is deprecated")
@pytest.mark.filterwarnings("ignore:.*quantize_per_channel.*deprecated")
def test_int8_weights_are_quantize_dynamics_bit_for_bit(tiny_model_dir):
    """int8_weights repeats torch's quantize_dynamic (per-channel qconfig) so it can keep the int8
    tensors; the layers it builds hold exactly what quantize_dynamic's do."""
    import copy

    model = float_model(tiny_model_dir)
    reference = torch.ao.quantization.quantize_dynamic(
        copy.deepcopy(model), {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}
    )
    quantize_int8(model)
    expected = {
        n: m._weight_bias() for n, m in reference.named_modules() if m._get_name() == "DynamicQuantizedLinear"
    }
    ours = {n: m for n, m in model.named_modules() if m._get_name() == "TokenScaledInt8Linear"}
    assert set(ours) == set(expected) and len(ours) == 15
    for name, layer in ours.items():
        weight, bias = expected[name]
        got, packed_bias = layer.inner._weight_bias()
        assert packed_bias is None  # the wrapper adds the bias itself
        assert torch.equal(got.int_repr(), weight.int_repr())
        assert torch.equal(got.q_per_channel_scales(), weight.q_per_channel_scales())
        assert torch.equal(got.q_per_channel_zero_points(), weight.q_per_channel_zero_points())
        assert torch.equal(layer.bias, bias) if bias is not None else layer.bias is None


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(4096))


def _other_layers(path: Path) -> None:
    """A well-formed file whose layers are not the model's (one missing)."""
    payload = torch.load(path, weights_only=True)
    payload["layers"].pop(next(iter(payload["layers"])))
    torch.save(payload, path)


def _wrong_shape(path: Path) -> None:
    payload = torch.load(path, weights_only=True)
    layer = next(iter(payload["layers"].values()))
    layer["weight"] = layer["weight"][:-1]
    torch.save(payload, path)


@pytest.mark.parametrize("damage", [_truncate, _garbage, _other_layers, _wrong_shape])
def test_an_unusable_cache_is_replaced_and_the_load_still_succeeds(tiny_model_dir, settings, caplog, damage):
    s = int8_settings(settings, tiny_model_dir)
    first, _ = load(s, caplog)
    [cached] = cache_files(s)
    damage(cached)
    again, line = load(s, caplog)
    assert saved_afresh(line, caplog)
    assert any(r.levelno == logging.WARNING and "unusable" in r.getMessage() for r in caplog.records)
    assert torch.equal(logits(again), logits(first))
    assert cache_files(s) == [cached]  # written afresh under the same key
    third, line = load(s, caplog)
    assert "read from the int8 cache" in line and torch.equal(logits(third), logits(first))


def test_a_changed_source_folder_gets_a_new_key_and_the_old_file_goes(model_copy, settings, caplog):
    s = int8_settings(settings, model_copy)
    key = int8_cache.int8_cache_file(model_copy, s.cache_dir)[0]
    assert int8_cache.int8_cache_file(model_copy, s.cache_dir)[0] == key  # stable while nothing changes
    load(s, caplog)
    assert cache_files(s) == [key]

    weights = model_copy / "model.safetensors"
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # `touch`
    touched = int8_cache.int8_cache_file(model_copy, s.cache_dir)[0]
    assert touched != key
    _, line = load(s, caplog)
    assert saved_afresh(line, caplog)
    assert cache_files(s) == [touched]  # the stale one is deleted

    config = model_copy / "config.json"
    config.write_text(config.read_text().replace('"rms_norm_eps"', '"rms_norm_eps" ', 1))
    edited = int8_cache.int8_cache_file(model_copy, s.cache_dir)[0]
    assert edited not in (key, touched)
    # and so does another torch (or int8 engine, or cache format)
    identity = int8_cache.cache_identity()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(int8_cache, "cache_identity", lambda: {**identity, "torch": "0.0"})
        assert int8_cache.int8_cache_file(model_copy, s.cache_dir)[0] != edited


def test_a_killed_starts_temporary_file_is_cleared_once_old(tiny_model_dir, settings, caplog):
    s = int8_settings(settings, tiny_model_dir)
    path = int8_cache.int8_cache_file(tiny_model_dir, s.cache_dir)[0]
    path.parent.mkdir(parents=True)
    old, fresh = path.with_name(path.name + ".abc.tmp"), path.with_name(path.name + ".def.tmp")
    for p in (old, fresh):
        p.write_bytes(b"half a file")
    os.utime(old, (0, 0))
    load(s, caplog)
    assert cache_files(s) == sorted([path, fresh])  # a fresh one may be another start's, being written


def test_a_cache_that_cannot_be_written_costs_time_not_the_start(tiny_model_dir, settings, caplog):
    s = int8_settings(settings, tiny_model_dir)
    s.cache_dir.mkdir(parents=True)
    (s.cache_dir / "models").write_text("a file where the folder should be")
    model, line = load(s, caplog)
    assert " layers quantized in " in line and quantized_layers(model) == 15
    assert any("could not save the int8 weights" in r.getMessage() for r in caplog.records)


def test_a_save_cut_short_leaves_no_file(tiny_model_dir, tmp_path, monkeypatch):
    """The file appears whole or not at all: a save that fails (or is interrupted) leaves nothing."""
    weights = int8_weights(float_model(tiny_model_dir))
    path = tmp_path / "models" / "tiny-int8-0123456789abcdef.pt"

    def dies(obj, f):
        f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies)
    with pytest.raises(KeyboardInterrupt):
        save_int8(path, weights, {"format": 1})
    assert list(path.parent.iterdir()) == []
