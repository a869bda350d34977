"""Which language model answers, on what device and in which precision, and how many users share it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class LLMSettings(BaseModel):
    # --- language model ------------------------------------------------------------------------
    llm_model: str = Field(
        "auto",
        description="`auto` (configured > on CUDA a cached Qwen2.5-3B/1.5B-Instruct > the packaged model), "
        "a preset from `assistant models`, a Hugging Face id in the local cache, a folder, or a .gguf file.",
    )
    llm_device: str = Field("auto", description="`auto` (cuda if present, else cpu), `cpu` or `cuda`.")
    llm_dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="`auto`: bf16 on CUDA (fp16 without bf16), bf16 on CPUs with bf16, else fp32."
    )
    llm_load_in_4bit: bool = Field(False, description="Load the LLM in 4-bit (bitsandbytes; CUDA only).")
    llm_quantize: Literal["auto", "int8", "off"] = Field(
        "auto",
        description="Int8 weights for CPU inference (~3x faster decode than fp32). `auto`: int8 on a CPU, "
        "except one with AMX bf16 (bf16 stays); never on a GPU (use llm_load_in_4bit there). `int8`: "
        "always on CPU (computes in float32). `off`: weights as loaded.",
    )
    llm_int8_cache: bool = Field(
        True,
        description="Keep the int8 weights on disk (`cache_dir/models/<model>-int8-<key>.pt`, about the "
        "size of the bf16 weights) so later starts skip quantizing; false quantizes at every start.",
    )
    llm_max_memory: str | None = Field(
        None, description="Cap on GPU memory for the LLM (e.g. `6GiB`); the rest is offloaded to CPU."
    )
    llm_max_cpu_memory: str = Field("32GiB", description="CPU memory accelerate may use with llm_max_memory.")
    llm_threads: int | None = Field(None, ge=1, description="CPU threads for torch (default: torch's own).")
    llm_fast_path: Literal["auto", "on", "off"] = Field(
        "auto", description="Static KV cache + compiled decode step; `auto` turns it on on CUDA."
    )
    llm_context_window: int = Field(
        0, ge=0, description="Cap on the context window in tokens; 0 uses the model's own."
    )
    llm_max_new_tokens: int = Field(256, ge=1, description="Longest answer, in tokens.")
    llm_temperature: float = Field(0.0, ge=0, le=2, description="0 = greedy (reproducible answers).")
    llm_top_p: float = Field(0.9, gt=0, le=1, description="Nucleus sampling when temperature > 0.")
    llm_repetition_penalty: float = Field(1.05, ge=1, description="Discourages small models from looping.")

    # --- serving many users: batching in-process, or a remote engine ----------------------------------
    llm_batching: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Continuous batching: concurrent answers share the one model step by step. `auto`: on "
        "a CPU where the model supports it; on a GPU the compiled one-at-a-time path (faster there up to "
        "8 users, docs/benchmarks.md); the log and `doctor` say which. `off`: one at a time.",
    )
    llm_batch_size: int = Field(
        8, ge=1, description="Most answers generated at once with batching; later ones wait their turn."
    )
    llm_kv_cache_tokens: int = Field(
        0,
        ge=0,
        description="KV cache of the batch, in tokens across all answers; 0 = llm_batch_size × the context "
        "window (at most 4096 each), capped on a GPU to what llm_max_memory leaves.",
    )
    llm_prefix_cache: bool = Field(
        True,
        description="With batching: an answer whose prompt starts like one already computed (the system "
        "prompt; the same sources for a similar question; the same question again) reuses that part of "
        "the KV cache instead of computing it again. Finished answers' blocks stay reusable until the "
        "space is needed.",
    )
    llm_url: str | None = Field(
        None,
        description="An OpenAI-compatible server (vLLM, TGI, llama.cpp, Ollama, `transformers serve`), e.g. "
        "http://gpu-box:8000/v1. Set: rewrites and answers go there and no model is loaded here.",
    )
    llm_api_key: SecretStr | None = Field(None, description="API key for llm_url (never logged).")
    llm_remote_model: str | None = Field(
        None, description="Model name at llm_url; unset = the only model the server lists."
    )
    llm_remote_tokenizer: str | None = Field(
        None,
        description="A folder or locally cached id with the remote model's tokenizer, for exact token "
        "budgets; unset = llm_remote_model if on disk, else an estimate of 1 token per 3 bytes.",
    )
    llm_remote_timeout: float = Field(
        60.0, gt=0, description="Seconds to wait for the model server before saying it did not answer."
    )
