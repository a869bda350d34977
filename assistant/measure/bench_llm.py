"""`assistant bench llm`: the engine as the app uses it against a bare `model.generate` on the same
model, prompt and settings; int8 against fp32; a lone user on the batched path. Figures are printed,
never asserted by timed tests."""

from __future__ import annotations

import gc
import os
import statistics
import time
from typing import Any

from assistant.settings import PROJECT_DIR

# Architectures of the Qwen2.5 instruct models (from their published config.json), for benchmarks with
# randomly initialised weights where no real weights can travel: speed does not depend on weight values.
QWEN_CONFIGS: dict[str, dict[str, Any]] = {
    "qwen2.5-1.5b-instruct": dict(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        vocab_size=151936,
        tie_word_embeddings=True,
    ),
    "qwen2.5-3b-instruct": dict(
        hidden_size=2048,
        intermediate_size=11008,
        num_hidden_layers=36,
        num_attention_heads=16,
        num_key_value_heads=2,
        vocab_size=151936,
        tie_word_embeddings=True,
    ),
    "qwen2.5-7b-instruct": dict(
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        vocab_size=152064,
        tie_word_embeddings=False,
    ),
}


def random_qwen(name: str, settings: Any) -> tuple[Any, Any]:
    """A randomly initialised Qwen2.5 of the named size, with the packaged model's (same-family) tokenizer."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from assistant.knowledge.embedder import resolve_device
    from assistant.llm.models import pick_dtype, prepare_packaged

    device = resolve_device(settings.llm_device)
    dtype = pick_dtype(settings.llm_dtype, device)
    config = Qwen2Config(
        **QWEN_CONFIGS[name],
        max_position_embeddings=32768,
        rope_theta=1e6,
        rms_norm_eps=1e-6,
        bos_token_id=151643,
        eos_token_id=151645,
    )
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype).eval()
    tokenizer = AutoTokenizer.from_pretrained(prepare_packaged(settings.cache_dir))
    return model, tokenizer


def measure_bandwidth(device: str, mbytes: int = 512) -> float:
    """Achieved memory bandwidth in GB/s (a tensor copy reads and writes every byte)."""
    import torch

    x = torch.empty(mbytes * 2**20, dtype=torch.uint8, device=device)
    y = torch.empty_like(x)
    best = float("inf")
    for _ in range(5):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        y.copy_(x)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * x.numel() / best / 1e9


def _bench_prompt(engine: Any, prompt_tokens: int) -> list[dict[str, str]]:
    """A RAG-shaped prompt of about `prompt_tokens` tokens built from the corpus."""
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted((PROJECT_DIR / "corpus").iterdir()))
    ids = engine.tokenizer.encode(text, add_special_tokens=False)[: max(prompt_tokens - 40, 8)]
    context = engine.tokenizer.decode(ids)
    return [
        {"role": "system", "content": "Answer from the sources and cite them as [n]."},
        {"role": "user", "content": f"Sources:\n[1] {context}\n\nQuestion: how do I pick a batch size?"},
    ]


def _load_engine(settings: Any, random_model: str | None) -> Any:
    from assistant.llm.engine import LLMEngine
    from assistant.llm.models import quantize_plan
    from assistant.llm.quantize import INT8, quantize_int8

    if not random_model:
        return LLMEngine(settings)
    plan = quantize_plan(settings)
    if plan.dtype:
        settings = settings.model_copy(update={"llm_dtype": plan.dtype})
    model, tokenizer = random_qwen(random_model, settings)
    if plan.method == INT8:
        quantize_int8(model)
    return LLMEngine(settings, model=model, tokenizer=tokenizer, name=f"{random_model} (random weights)")


def bench_llm(
    settings: Any,
    *,
    prompt_tokens: int = 512,
    new_tokens: int = 64,
    runs: int = 5,
    random_model: str | None = None,
    quantize: list[str] | None = None,
) -> dict[str, Any]:
    """One benchmark with the settings as they are, or one per `llm_quantize` value back to back (same
    prompt, same process) with the int8/off ratios when both are among them."""
    if not quantize:
        return _bench_one(settings, prompt_tokens, new_tokens, runs, random_model)
    if len(quantize) == 1:
        one = settings.model_copy(update={"llm_quantize": quantize[0]})
        return _bench_one(one, prompt_tokens, new_tokens, runs, random_model)
    results = []
    for q in quantize:
        one = settings.model_copy(update={"llm_quantize": q})
        results.append(_bench_one(one, prompt_tokens, new_tokens, runs, random_model))
        gc.collect()  # the previous configuration's weights go before the next one loads its own
    out: dict[str, Any] = {"runs": results}
    by = {q: r for q, r in zip(quantize, results, strict=True)}
    if "off" in by and "int8" in by:
        off, int8 = by["off"], by["int8"]
        out["int8_vs_off"] = {
            "decode": round(int8["engine_decode_tps"] / off["engine_decode_tps"], 2),
            "prefill": round(int8["engine_prefill_tps"] / off["engine_prefill_tps"], 2),
        }
    return out


def _bench_one(
    settings: Any, prompt_tokens: int, new_tokens: int, runs: int, random_model: str | None
) -> dict[str, Any]:
    import torch

    from assistant.llm.batching import batching_plan
    from assistant.llm.engine import LLMEngine
    from assistant.llm.quantize import weight_bytes

    # Engine against bare generate needs the one-at-a-time path: while a batching manager runs, a plain
    # generate() on the same model fails (transformers #48735). The batched engine is measured after,
    # on the same weights, once nothing else will call generate() on them.
    start = time.perf_counter()
    engine = _load_engine(settings.model_copy(update={"llm_batching": "off"}), random_model)
    load_s = time.perf_counter() - start
    messages = _bench_prompt(engine, prompt_tokens)
    ids = engine.encode_chat(messages)
    params = engine.generation_params(new_tokens, 0.0, min_new_tokens=new_tokens)
    sync = torch.cuda.synchronize if engine.device.startswith("cuda") else (lambda: None)

    def bare(n: int) -> float:
        sync()
        t = time.perf_counter()
        with torch.inference_mode():
            engine.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                **{**params, "max_new_tokens": n, "min_new_tokens": n},
            )
        sync()
        return time.perf_counter() - t

    def engine_run(engine: Any = engine) -> Any:
        gen = engine.stream(
            input_ids=ids, max_new_tokens=new_tokens, temperature=0.0, min_new_tokens=new_tokens
        )
        for _ in gen:
            pass
        return gen.stats

    engine_run(), bare(1), bare(new_tokens)  # warm-up: lazy init, (on the fast path) compilation
    e_ttft, e_tps, b_ttft, b_tps = [], [], [], []
    for _ in range(runs):  # interleaved, so drift on a shared machine hits both sides alike
        stats = engine_run()
        e_ttft.append(stats.first_token_ms)
        e_tps.append(stats.decode_tokens_per_s)
        t1, tn = bare(1), bare(new_tokens)
        b_ttft.append(t1 * 1000)
        b_tps.append((new_tokens - 1) / (tn - t1))
    n_prompt = int(ids.shape[-1])
    model_bytes = weight_bytes(engine.model)
    bandwidth = measure_bandwidth(engine.device if engine.device != "cpu" else "cpu")
    out = {
        "model": engine.name,
        "device": torch.cuda.get_device_name(0)
        if engine.device.startswith("cuda")
        else f"cpu ({os.cpu_count()} cores)",
        "dtype": engine.dtype,
        "quantization": engine.quantization,
        "quantization_reason": engine.quantization_reason,
        "fast_path": engine.fast_path,  # of the one-at-a-time engine measured against bare generate
        "load_s": round(load_s, 2),
        "prompt_tokens": n_prompt,
        "new_tokens": new_tokens,
        "engine_ttft_ms": round(statistics.median(e_ttft), 1),
        "bare_ttft_ms": round(statistics.median(b_ttft), 1),
        "engine_decode_tps": round(statistics.median(e_tps), 2),
        "bare_decode_tps": round(statistics.median(b_tps), 2),
        "engine_prefill_tps": round(n_prompt / (statistics.median(e_ttft) / 1000), 1),
        "bare_prefill_tps": round(n_prompt / (statistics.median(b_ttft) / 1000), 1),
        "model_gb": round(model_bytes / 1e9, 3),
        "measured_bandwidth_gbs": round(bandwidth, 1),
        "decode_bound_tps": round(bandwidth * 1e9 / model_bytes, 1),
    }
    # Paired per run (engine run i against the bare run right after it), so machine drift cancels.
    out["decode_ratio"] = round(statistics.median(e / b for e, b in zip(e_tps, b_tps, strict=True)), 3)
    out["ttft_delta_ms"] = round(statistics.median(e - b for e, b in zip(e_ttft, b_ttft, strict=True)), 1)
    engine.worker.shutdown()
    use, why = batching_plan(settings, engine.model, engine.device)
    out["batching"] = why
    if use:  # one user alone on the batched path: what turning batching on costs a lone user
        batched = LLMEngine(settings, model=engine.model, tokenizer=engine.tokenizer, name=engine.name)
        try:
            engine_run(batched)
            alone = [engine_run(batched) for _ in range(runs)]
        finally:
            batched.close()
        ttft = statistics.median(s.first_token_ms for s in alone)
        tps = statistics.median(s.decode_tokens_per_s for s in alone)
        out["batched"] = {
            "ttft_ms": round(ttft, 1),
            "decode_tps": round(tps, 2),
            "decode_vs_serial": round(tps / out["engine_decode_tps"], 3),
            "ttft_vs_serial": round(ttft / out["engine_ttft_ms"], 3),
        }
    return out
