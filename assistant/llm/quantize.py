"""Int8 weights for the LLM on a CPU (`llm_quantize`).

Decoding one token reads every weight once, so on a CPU it is bound by memory traffic: int8 weights
read a quarter of the bytes of fp32. torch's dynamic quantization turns each `nn.Linear` into an int8
weight matrix (fbgemm kernels on x86, qnnpack on ARM); activations stay float32 and are quantized on
the fly per call. Weights get one scale per output channel, not one per matrix: on the packaged model
that cut the next-token KL divergence from fp32 seven-fold (0.102 -> 0.015 mean over 160 decoding
steps; top-1 agreement 139 -> 152 of 160) at the same speed.

One scale per call would tie tokens together: with continuous batching one call carries the tokens
of several answers, so an answer would depend on its batch-mates, and inside one prompt a single
outlier token (LLMs have a few whose activations are far above the rest) would crush the precision
of the others. `TokenScaledInt8Linear` gives every token its own scale instead: it divides each row
by its largest magnitude and appends one sentinel row holding +1 and -1, so the kernel's per-call
range is always exactly [-1, 1] whatever else is in the call; the output rows are scaled back. A row
of a call with several rows is then computed exactly as beside any other rows.

A call with one row (a lone answer's decoding step: most of the calls on a workstation) goes to the
kernel as it is: one row's range is its own already, and the five small kernels around the call cost
a fifth of the decode speed (raw decode 19.2 against 23.7 tokens/s on the packaged model). The one
row is rounded on its own asymmetric range rather than the symmetric [-1, 1], so an answer decoded
alone and the same answer decoded beside others may differ in the last bits, like in any batching
server; neither ever takes its scale from another token. Figures on the packaged model are in
docs/benchmarks.md ("CPU int8"). Quantizing takes seconds, so nothing is cached on disk.

Why torch's own API: `torch.ao.quantization.quantize_dynamic` warns that it is deprecated in favour of
torchao, but torchao 0.18 ships no x86 CPU kernels: its int8 configs ran 7-40x slower than fp32 in
eager mode here (they rely on torch.compile). torch is pinned, so the API is there; this module is the
one place to change when torchao gets CPU kernels.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INT8 = "int8"
OFF = "off"


@dataclass(frozen=True)
class QuantizePlan:
    method: str  # "int8" | "off"
    dtype: str | None  # dtype the weights must be loaded in for the method; None: llm_dtype decides
    reason: str


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def plan_quantization(
    setting: str,
    device: str,
    *,
    dtype_setting: str = "auto",
    load_in_4bit: bool = False,
    flags: Iterable[str] | None = None,
) -> QuantizePlan:
    """What `llm_quantize` means for this device and CPU.

    The rule for `auto`: int8 on a CPU, except one with AMX tiles (`amx_bf16`), where bf16 matmuls run
    on the tile unit and bf16 stays; accelerators are never touched (4-bit is `llm_load_in_4bit`); an
    explicit half-precision `llm_dtype` is respected.
    """
    if device != "cpu" or load_in_4bit:
        if setting == INT8:
            raise ValueError(
                f"llm_quantize=int8 is for CPU inference; the model runs on {device}. On a GPU use "
                "llm_load_in_4bit=true for smaller weights, or set llm_quantize=auto."
            )
        where = "GPU" if device.startswith("cuda") else device
        return QuantizePlan(OFF, None, f"{where}: weights stay as loaded (4-bit is llm_load_in_4bit)")
    if setting == OFF:
        return QuantizePlan(OFF, None, "llm_quantize=off")
    if dtype_setting in ("bfloat16", "float16"):
        if setting == INT8:
            raise ValueError(
                f"llm_quantize=int8 computes in float32 around int8 weights, so it does not combine with "
                f"llm_dtype={dtype_setting}: set llm_dtype=auto (or float32), or llm_quantize=off."
            )
        return QuantizePlan(OFF, None, f"auto: llm_dtype={dtype_setting} was asked for")
    if setting == INT8:
        return QuantizePlan(INT8, "float32", "llm_quantize=int8")
    found = cpu_flags() if flags is None else set(flags)
    if "amx_bf16" in found:
        return QuantizePlan(
            OFF, None, "auto: this CPU has AMX bf16, bf16 stays (llm_quantize=int8 to compare)"
        )
    native = "avx512_bf16" in found
    return QuantizePlan(
        INT8, "float32", f"auto: CPU {'with avx512_bf16 but no AMX' if native else 'without native bf16'}"
    )


def _engine() -> str | None:
    import torch

    supported = torch.backends.quantized.supported_engines
    return next((e for e in ("fbgemm", "qnnpack") if e in supported), None)


def quantize_int8(model: Any) -> int:
    """Replace every `nn.Linear` (lm_head included) by an int8 one with per-token activation scales,
    in place.

    Returns the number of layers converted. The embeddings stay float (a lookup reads one row).
    """
    import torch
    from torch import nn

    engine = _engine()
    if engine is None:
        raise RuntimeError("this torch build has no int8 CPU kernels (fbgemm/qnnpack); set llm_quantize=off")
    previous = torch.backends.quantized.engine
    try:
        torch.backends.quantized.engine = engine  # the engine that packs the weights also runs them
        with warnings.catch_warnings():
            # The deprecation notices point to torchao, which has no CPU kernels yet (module docstring).
            warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated")
            warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*deprecated")
            warnings.filterwarnings("ignore", message=r".*quantize_per_channel.*deprecated")
            torch.ao.quantization.quantize_dynamic(
                model, {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}, inplace=True
            )
            _per_token(model)
    finally:
        torch.backends.quantized.engine = previous
    return quantized_layers(model)


def _token_scaled_class() -> type:
    import torch
    from torch import nn

    class TokenScaledInt8Linear(nn.Module):
        """An int8 dynamic-quantized linear layer whose activations are quantized with one range per
        token, so a row's result never depends on the other rows of the call (module docstring)."""

        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            weight, bias = inner._weight_bias()
            inner.set_weight_bias(weight, None)  # the bias is added after the rows are scaled back
            self.inner = inner
            self.in_features, self.out_features = inner.in_features, inner.out_features
            self.reduce_range = bool(getattr(inner, "reduce_range", True))
            self.packed = inner._packed_params._packed_params  # fbgemm's packed int8 weight
            self.register_buffer("bias", bias, persistent=False)
            sentinel = torch.zeros(1, inner.in_features)
            sentinel[0, 0], sentinel[0, -1] = 1.0, -1.0
            self.register_buffer("sentinel", sentinel, persistent=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            rows = x.reshape(-1, x.shape[-1])
            if rows.shape[0] == 1:  # one token (a lone answer's decoding step): its own range already
                out = torch.ops.quantized.linear_dynamic(rows, self.packed, reduce_range=self.reduce_range)
                out = out if self.bias is None else out.add_(self.bias)
                return out.view(*x.shape[:-1], self.out_features)
            # Few kernels on purpose: this runs ~170 times per decoded token (abs+amax measured
            # faster than vector_norm here).
            scale = rows.abs().amax(dim=1, keepdim=True).clamp_min_(1e-12)
            out = torch.ops.quantized.linear_dynamic(
                torch.cat([rows / scale, self.sentinel]), self.packed, reduce_range=self.reduce_range
            )[:-1]
            out = out.mul_(scale) if self.bias is None else torch.addcmul(self.bias, out, scale)
            return out.view(*x.shape[:-1], self.out_features)

    return TokenScaledInt8Linear


def _per_token(model: Any) -> None:
    """Wrap every dynamic-quantized linear layer of `model` in a TokenScaledInt8Linear, in place."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    cls = _token_scaled_class()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, DynamicQuantizedLinear):
                setattr(parent, name, cls(child))


def _is_int8_linear(module: Any) -> bool:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    return isinstance(module, DynamicQuantizedLinear)


def quantized_layers(model: Any) -> int:
    return sum(_is_int8_linear(m) for m in model.modules())


def quantization_of(model: Any) -> str:
    """`int8` when the model carries int8 dynamic-quantized layers, else `off`: read from the model itself."""
    return INT8 if quantized_layers(model) else OFF


def weight_bytes(model: Any) -> int:
    """Bytes of weights one decoded token reads: every linear layer (int8 ones at one byte a weight, a
    tied lm_head counted as the full matrix it is) and norms; embeddings only give one row, so not them."""
    from torch import nn

    total = 0
    for module in model.modules():
        if _is_int8_linear(module):
            weight, bias = module._weight_bias()
            total += weight.numel() + (bias.numel() * bias.element_size() if bias is not None else 0)
        elif not isinstance(module, nn.Embedding):
            total += sum(p.numel() * p.element_size() for p in module.parameters(recurse=False))
    return total
