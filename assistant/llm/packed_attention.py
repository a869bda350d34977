"""Attention for a continuously batched step, one answer at a time within the step.

transformers' batch manager packs every answer of a step into one row of queries and one of keys,
and on a CPU (SDPA) it attends the whole row to the whole row under a block-diagonal mask. The
work then grows with the square of the step's total length: four fresh 700-token prompts cost
(4 × 700)² score entries instead of 4 × 700², and each decode step of four answers attends every
query to all four answers' keys. `per_answer_attention()` wraps the SDPA attention function once
per process: for a step of paged attention with more than one answer it runs the same function on
each answer's own block of queries, keys and mask, and joins the outputs. The blocks it leaves out
are the mask's all-masked ones, so every answer sees exactly the scores it saw before.

Where the paged cache is written differs by version. Up to transformers 5.23 the attention
function writes it and reads the step's keys back (`cache=` comes in), so the wrapper does that
first. From 5.24 the attention layer has done it before the call, and the keys arrive whole (the
step's `read_index` is still among the arguments). Anything else (one answer, no paged cache,
flash kernels with a block table, the one-at-a-time path) goes to the unwrapped function untouched.

On a GPU the step is left whole. The split is a CPU saving, and on CUDA its sliced queries and keys
made cuDNN's attention fail ("misaligned address", then every later step) as soon as four answers
shared a step (H200, torch 2.11, transformers 5.24, 2026-12-04); a CUDA graph could not hold the
split's host reads either.
"""

from __future__ import annotations

from typing import Any

split_steps = 0  # attention calls that ran per answer (read by tests)


def per_answer_attention() -> None:
    """Install the wrapper over transformers' "sdpa" attention (idempotent)."""
    from transformers.generation.continuous_batching.cache import PagedAttentionCache
    from transformers.modeling_utils import AttentionInterface

    sdpa = AttentionInterface._global_mapping["sdpa"]
    if getattr(sdpa, "_per_answer", False):
        return

    def attention(
        module: Any,
        query: Any,
        key: Any,
        value: Any,
        attention_mask: Any,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[Any, None]:
        cu_q = kwargs.get("cu_seq_lens_q")
        cache = kwargs.get("cache")
        writes_cache = isinstance(cache, PagedAttentionCache)  # transformers <= 5.23
        written = cache is None and "read_index" in kwargs  # 5.24+: the layer updated the cache
        if (
            args
            or not (writes_cache or written)
            or attention_mask is None
            or kwargs.get("block_table") is not None
            or cu_q is None
            or cu_q.numel() <= 2  # one answer: nothing to leave out
            or query.is_cuda  # see the module's note on GPUs
        ):
            return sdpa(module, query, key, value, attention_mask, *args, **kwargs)
        import torch

        global split_steps
        split_steps += 1
        if writes_cache:  # the split calls below get the keys read back, not the cache
            del kwargs["cache"]
            layer = module.layer_idx
            key, value = cache.update(key_states=key, value_states=value, layer_idx=layer, kwargs=kwargs)
        q_at, k_at = cu_q.tolist(), kwargs["cu_seq_lens_k"].tolist()
        outputs = []
        for i in range(len(q_at) - 1):
            (q0, q1), (k0, k1) = (q_at[i], q_at[i + 1]), (k_at[i], k_at[i + 1])
            if q1 > q0:
                out, _ = sdpa(
                    module,
                    query[:, :, q0:q1],
                    key[:, :, k0:k1],
                    value[:, :, k0:k1],
                    attention_mask[..., q0:q1, k0:k1],
                    **kwargs,
                )
                outputs.append(out)
        out = torch.cat(outputs, dim=1)  # [1, queries, heads, head_dim]
        if out.shape[1] < query.shape[2]:  # padded queries (static shapes) get zeros, as masked rows would
            pad = out.new_zeros(out.shape[0], query.shape[2] - out.shape[1], *out.shape[2:])
            out = torch.cat([out, pad], dim=1)
        return out, None

    attention._per_answer = True  # type: ignore[attr-defined]
    attention.__wrapped__ = sdpa  # type: ignore[attr-defined]
    AttentionInterface.register("sdpa", attention)
