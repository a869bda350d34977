"""Speed benchmarks: figures printed by `assistant bench …`, never asserted by timed tests."""

from __future__ import annotations

import gc
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from assistant.measure.evaluation import GOLDSET_DIR, load_jsonl
from assistant.settings import PROJECT_DIR


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def time_queries(assistant: Any, queries: list[str], repeat: int = 3) -> dict[str, float]:
    assistant.search(queries[0])  # warm-up: BM25 build, first-call overheads
    times = []
    for _ in range(repeat):
        for q in queries:
            t = time.perf_counter()
            assistant.search(q)
            times.append((time.perf_counter() - t) * 1000)
    return {
        "queries": len(times),
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "mean_ms": statistics.fmean(times),
        "stages_p50_ms": profile_query(assistant, queries),
    }


def profile_query(assistant: Any, queries: list[str]) -> dict[str, float]:
    """Median ms of each stage of a search: query embedding, Chroma top-n (distances only), BM25,
    and the rest (fusion, result assembly) as the whole search minus those."""
    r, s = assistant.retriever, assistant.settings
    n = min(max(s.candidates, 4 * s.retrieval_k), assistant.store.count())
    stages: dict[str, list[float]] = {"embed": [], "vector": [], "bm25": [], "search": []}
    for q in queries:
        t0 = time.perf_counter()
        vec = assistant.embedder.embed_query(q)
        t1 = time.perf_counter()
        snap = r._current()
        r._vector_scores(snap, vec, n)
        t2 = time.perf_counter()
        r._bm25_scores(snap, q, n)
        t3 = time.perf_counter()
        assistant.search(q)
        t4 = time.perf_counter()
        for key, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[key].append(dt * 1000)
    med = {k: round(statistics.median(v), 2) for k, v in stages.items()}
    med["fusion_and_assembly"] = round(
        max(0.0, med["search"] - med["embed"] - med["vector"] - med["bm25"]), 2
    )
    return med


def synthetic_corpus(folder: Path, units: int, seed: int = 0, per_file: int = 500) -> int:
    """Write `units` Q&A pairs in the corpus' markdown FAQ format, recombined from real corpus sentences."""
    import re

    from assistant.knowledge.corpus import clean_text

    rng = random.Random(seed)
    text = " ".join(p.read_text(encoding="utf-8") for p in (PROJECT_DIR / "corpus").iterdir())
    sentences = [" ".join(s.split()) for s in re.split(r"(?<=[.?!])\s+", text)]
    sentences = [
        s
        for s in sentences
        if 40 < len(s) < 300 and "#" not in s and not s.endswith("?") and clean_text(s) == s
    ]
    words = sorted({w for w in re.findall(r"[a-zA-Z]{4,}", text)})
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for f in range(0, units, per_file):
        lines = [f"# Synthetic FAQ {f // per_file}\n"]
        for i in range(f, min(f + per_file, units)):
            q = " ".join(rng.sample(words, 6))
            answer = " ".join(rng.sample(sentences, 3))
            lines.append(f"### {i + 1}. How do I {q}?\n\n{answer}\n")
            n += 1
        (folder / f"synthetic-{f // per_file:03d}.md").write_text("\n".join(lines), encoding="utf-8")
    return n


def bench_retrieval(settings: Any, synthetic_units: int = 10_000, repeat: int = 3) -> dict[str, Any]:
    """Ingest throughput and query latency on the real corpus and on a synthetic corpus."""
    from assistant.core import Assistant
    from assistant.knowledge.embedder import Embedder

    embedder = Embedder(
        settings.embedder, settings.embedder_device, settings.embed_batch_size, stamp_dir=settings.cache_dir
    )
    queries = [g["question"] for g in load_jsonl(GOLDSET_DIR / "retrieval.jsonl")]
    out: dict[str, Any] = {"device": embedder.device}
    with tempfile.TemporaryDirectory() as tmp:
        s = settings.model_copy(
            update={"data_dir": Path(tmp) / "corpus", "chroma_url": None, "chroma_mode": "embedded"}
        )
        a = Assistant(s, embedder=embedder)
        report = a.ingest(rebuild=True)
        out["corpus"] = {
            "units": report.units,
            "vectors": report.vectors,
            "ingest_units_per_s": report.units / report.seconds,
            "ingest_s": report.seconds,
            **time_queries(a, queries, repeat),
        }
        if synthetic_units:
            cache = settings.data_dir / "bench" / f"synthetic-{synthetic_units}"
            docs = cache / "docs"
            if not docs.exists():
                synthetic_corpus(docs, synthetic_units)
            s = settings.model_copy(update={"data_dir": cache, "chroma_url": None, "chroma_mode": "embedded"})
            a = Assistant(s, embedder=embedder)
            report = a.ingest([docs], progress=True)  # incremental: a rerun reuses the stored vectors
            out["synthetic"] = {
                "units": a.retriever.unit_count(),
                "vectors": a.store.count(),
                **(
                    {"ingest_units_per_s": report.units / report.seconds, "ingest_s": report.seconds}
                    if report.units
                    else {}
                ),
                **time_queries(a, queries, repeat),
            }
    return out


# --------------------------------------------------------------------------------------------------
# Fusion: how the retrieval method was chosen, recomputed on the shipped index (`assistant bench fusion`)
# --------------------------------------------------------------------------------------------------


def bench_fusion(assistant: Any, rrf_k: int = 60) -> dict[str, dict[str, float]]:
    """hit@1 on each retrieval goldset for the fusion variants of docs/benchmarks.md.

    Every vector of the (small) index is scored, so each variant's per-unit best cosine is exact:
    `pieces` uses only the answer pieces, `+question key` adds the question-only vector, `shipped`
    adds the per-sentence keys too (what search uses)."""
    from assistant.measure.evaluation import is_gold

    r, s = assistant.retriever, assistant.settings
    r._current()  # build the snapshot (BM25) before timing anything
    units = {u["unit_id"]: u for u in r.units()}
    total = assistant.store.count()

    def vector_best(query: str, roles: tuple[str, ...]) -> dict[str, float]:
        got = assistant.store.collection.query(
            query_embeddings=[assistant.embedder.embed_query(query).tolist()],
            n_results=total,
            include=["distances"],
        )
        best: dict[str, float] = {}
        for rid, dist in zip(got["ids"][0], got["distances"][0], strict=True):
            uid, _generation, role = rid.rsplit(":", 2)  # <unit>:<generation>:<role><i>
            if role in roles or role[0] in roles:
                best[uid] = max(best.get(uid, -1.0), 1.0 - float(dist))
        return best

    def weighted(vec: dict[str, float], bm: dict[str, float], wv: float, wb: float) -> list[str]:
        top = max(bm.values(), default=0.0) or 1.0
        return sorted(vec, key=lambda u: -(wv * vec[u] + wb * bm.get(u, 0.0) / top))

    def rrf(vec: dict[str, float], bm: dict[str, float]) -> list[str]:
        score: dict[str, float] = {}
        for ranking in (sorted(vec, key=lambda u: -vec[u]), sorted(bm, key=lambda u: -bm[u])):
            for i, u in enumerate(ranking):
                score[u] = score.get(u, 0.0) + 1 / (rrf_k + i + 1)
        return sorted(score, key=lambda u: -score[u])

    wv, wb = s.vector_weight, s.bm25_weight
    variants = {
        "pieces, vector only": lambda v, b: sorted(v["p"], key=lambda u: -v["p"][u]),
        f"pieces, RRF (k={rrf_k}) of vector and BM25": lambda v, b: rrf(v["p"], b),
        f"pieces, {wv} x cosine + {wb} x BM25/max": lambda v, b: weighted(v["p"], b, wv, wb),
        "+ question key (weighted)": lambda v, b: weighted(v["pq"], b, wv, wb),
        "+ question and sentence keys (shipped)": lambda v, b: weighted(v["all"], b, wv, wb),
        "shipped keys, vector only": lambda v, b: sorted(v["all"], key=lambda u: -v["all"][u]),
        f"shipped keys, RRF (k={rrf_k})": lambda v, b: rrf(v["all"], b),
        "shipped keys, 0.7 x cosine + 0.3 x BM25/max": lambda v, b: weighted(v["all"], b, 0.7, 0.3),
        "shipped keys, 0.9 x cosine + 0.1 x BM25/max": lambda v, b: weighted(v["all"], b, 0.9, 0.1),
        "BM25 only": lambda v, b: sorted(b, key=lambda u: -b[u]),
    }
    out: dict[str, dict[str, float]] = {name: {} for name in variants}
    for goldset in ("retrieval.jsonl", "retrieval_heldout.jsonl"):
        items = load_jsonl(GOLDSET_DIR / goldset)
        hits = dict.fromkeys(variants, 0)
        for item in items:
            q = item["question"]
            vec = {
                "p": vector_best(q, ("p",)),
                "pq": vector_best(q, ("p", "k0")),
                "all": vector_best(q, ("p", "k")),
            }
            snap = r._current()
            bm = {u: v[0] for u, v in r._bm25_scores(snap, q, len(snap.pieces)).items()}
            for name, rank in variants.items():
                ranking = [u for u in rank(vec, bm) if u in units]
                hits[name] += bool(ranking) and is_gold(SimpleNamespace(**units[ranking[0]]), item["gold"])
        for name in variants:
            out[name][goldset] = round(hits[name] / len(items), 3)
    return out


# --------------------------------------------------------------------------------------------------
# LLM: the engine as the app uses it against a bare model.generate, same model, prompt and settings
# --------------------------------------------------------------------------------------------------

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
