"""What the batching layer changes in transformers' continuous-batching loop, each measured (see
batching.py): a step whose answers are all greedy takes the argmax instead of sampling over the
whole vocabulary, and the loop runs in inference mode as `generate()` does."""

from __future__ import annotations

from typing import Any

GREEDY_TEMPERATURE = 1e-7  # logits / 1e-7: a gap of one fp32 ulp already decides; top token wins
GREEDY_LIMIT = 1e-6  # a step whose temperatures are all at most this takes the argmax (greedy_steps)


def greedy_steps() -> None:
    """Make transformers' batched step take the argmax when every request in it is greedy.

    The manager samples or not for the whole batch, so greedy requests run at GREEDY_TEMPERATURE
    through the temperature processor, a softmax and a multinomial draw over every vocabulary entry
    (152k for Qwen), which then picks the top token anyway. This wraps the (uncompiled) step once per
    process: for a step whose temperatures are all at most GREEDY_LIMIT it turns sampling and the
    processors off for that step only, so the same token comes out for a fraction of the work; a
    step with any sampling request is untouched. Compiled steps (GPU options) are not wrapped.
    """
    import torch
    from transformers.generation.continuous_batching import cb_logits_processors as lp
    from transformers.generation.continuous_batching import model_runner as mr

    runner = mr.ModelRunner
    if getattr(runner, "_greedy_steps", False):
        return
    step = runner._forward_process_and_sample

    def temperature_row(processors: Any) -> int | None:
        row = 0
        for p in processors.logits_processor:
            if isinstance(p, lp.ContinuousBatchingTemperatureLogitsWarper):
                return row
            if isinstance(p, lp.ContinuousBatchingLogitsProcessor):
                row += 1
        return None

    def greedy_aware(self: Any, model: Any, batch_data: dict, *args: Any) -> None:
        processors = self.logit_processor
        row = temperature_row(processors) if processors.do_processing and self.do_sample else None
        if row is None or self.return_logprobs:
            return step(self, model, batch_data, *args)
        n = int(batch_data["logits_indices"].numel())
        temps = batch_data["logits_processor_args"][row, :n].view(dtype=torch.float32)
        if n == 0 or float(temps.max()) > GREEDY_LIMIT:
            return step(self, model, batch_data, *args)
        self.do_sample, processors.do_processing = False, False
        try:
            return step(self, model, batch_data, *args)
        finally:
            self.do_sample, processors.do_processing = True, True

    runner._forward_process_and_sample = greedy_aware
    runner._greedy_steps = True


def start_in_inference_mode(manager: Any) -> None:
    """Start the manager's generation thread under `torch.inference_mode()`, as `generate()` runs.

    transformers up to 5.23 ran its batched steps under `no_grad` only, which still keeps version
    counters and view bookkeeping for every op; the model's decode step is hundreds of small ops
    (views, reshapes, the paged cache's index reads), so that bookkeeping cost a lone answer 7% of
    its decode rate on 2 CPU cores (19.5 against 21.0 tokens/s one at a time; 21.0 in inference
    mode). Inference mode is per thread: 5.24 runs the loop in the mode of the thread that starts
    it, so we start it in inference mode; for older versions the loop itself is wrapped. Nothing
    the loop makes leaves it as a tensor: requests get token ids.
    """
    import inspect

    import torch

    loop = manager._run_generation_loop
    if "use_inference_mode" not in inspect.signature(loop).parameters:  # transformers < 5.24

        def run() -> None:
            with torch.inference_mode():
                loop()

        manager._run_generation_loop = run
    with torch.inference_mode():
        manager.start()
