"""Continuous batching in the engine (the default on CPU): concurrent answers share the model step
by step, each with its own length and stop, a waiting answer says where it stands, and a dead
generation loop is an error on every waiting request, never a hang. Tiny random model, real
transformers ContinuousBatchingManager."""

from __future__ import annotations

import threading
import time

import pytest

from assistant.llm.batching import BatchingError
from assistant.llm.engine import LLMEngine
from assistant.llm.quantize import plan_quantization
from assistant.llm.streaming import Waiting
from assistant.settings import Settings


def msgs(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def engine(tiny_model_dir, tmp_path, **kw) -> LLMEngine:
    kw.setdefault("llm_quantize", "off")  # fp32 weights: batching's default setting (see below)
    s = Settings(data_dir=tmp_path, llm_model=str(tiny_model_dir), llm_dtype="float32", **kw)
    return LLMEngine(s)


@pytest.fixture(scope="module")
def batched(tiny_model_dir, tmp_path_factory):
    eng = engine(tiny_model_dir, tmp_path_factory.mktemp("batched"))
    yield eng
    eng.close()


def test_auto_batches_on_cpu_and_says_why(batched, tiny_engine, serial_engine):
    info = batched.describe()
    assert info["batching"] == "on" and info["batching_reason"].startswith("auto")
    # the CPU default batches whichever weights it chose: int8 (activations are scaled per token, not
    # per call), or, on a CPU with AMX bf16 tiles, the weights as loaded (explicit int8: below)
    assert (
        tiny_engine.quantization == plan_quantization("auto", "cpu").method and tiny_engine.batching == "on"
    )
    assert (
        serial_engine.describe()["batching"] == "off" and "llm_batching=off" in serial_engine.batching_reason
    )
    assert not batched.fast_path  # the compiled one-at-a-time path does not combine with batching


def test_greedy_batched_answer_equals_the_one_at_a_time_answer(tiny_model_dir, tmp_path):
    """Batching changes the schedule, not the answer (repetition penalty off: batching cannot apply it)."""
    batched = engine(tiny_model_dir, tmp_path / "b", llm_repetition_penalty=1.0)
    serial = engine(tiny_model_dir, tmp_path / "s", llm_repetition_penalty=1.0, llm_batching="off")
    try:
        for prompt in ("my loss plateaus", "how do I pick a batch size?"):
            one = batched.generate(msgs(prompt), max_new_tokens=30)
            assert one and one == serial.generate(msgs(prompt), max_new_tokens=30)
    finally:
        batched.close()


def test_int8_answers_batched_together_are_each_complete(tiny_model_dir, tmp_path):
    """With int8 weights (the CPU default) six answers decoded together each come out whole, and the
    int8 layers really carried several answers' tokens per call (the per-token path, next test) as
    well as one-token calls (the fast path)."""
    kw = {"llm_quantize": "int8", "llm_repetition_penalty": 1.0}
    batched = engine(tiny_model_dir, tmp_path / "b", **kw)
    prompts = ["my loss plateaus", "how do I pick a batch size?", "why is my GPU out of memory"] * 2
    rows: list[int] = []
    layer = next(m for m in batched.model.modules() if type(m).__name__ == "TokenScaledInt8Linear")
    hook = layer.register_forward_hook(
        lambda m, args, out: rows.append(args[0].reshape(-1, m.in_features).shape[0])
    )
    try:
        assert batched.batching == "on" and batched.quantization == "int8"
        batched.generate(msgs("warm up"), max_new_tokens=4, min_new_tokens=4)  # alone: one row a step
        answers: list[object] = [None] * len(prompts)

        def one(i: int) -> None:
            gen = batched.stream(msgs(prompts[i]), max_new_tokens=24, min_new_tokens=24)
            for _ in gen:
                pass
            answers[i] = gen.stats

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
        with batched.batcher.manager.pause():  # all six join the batch at one step, however slow the host
            for t in threads:
                t.start()
            deadline = time.monotonic() + 60
            while batched.batcher.active() < len(prompts) and time.monotonic() < deadline:
                time.sleep(0.01)
        for t in threads:
            t.join(120)
        assert all(a is not None and a.new_tokens == 24 for a in answers)
        assert 1 in rows and max(rows) > 1
    finally:
        hook.remove()
        batched.close()


def test_int8_rows_are_quantized_alone_even_beside_an_outlier():
    """The layer behind the test above, and why it is needed: torch's dynamic int8 scales a whole
    call by its largest value, so one outlier row (a token with activations ~100x the rest) changes the
    other rows' results; the per-token layer gives every row the result it gets beside any other rows,
    and a row alone (the one-token fast path) its own range, within int8 rounding of that result."""
    import torch
    from torch import nn

    from assistant.llm.quantize import quantize_int8

    torch.manual_seed(0)
    layer = nn.Sequential(nn.Linear(64, 32))
    x = torch.randn(6, 64)
    x[0] *= 100
    with torch.inference_mode():
        exact = layer(x)
    per_call = torch.ao.quantization.quantize_dynamic(layer, {nn.Linear}, dtype=torch.qint8)  # a copy
    quantize_int8(layer)
    with torch.inference_mode():
        for model, independent in ((layer, True), (per_call, False)):
            assert torch.equal(model(x)[1:], model(x[1:])) is independent  # with or without the outlier
        assert torch.equal(layer(x)[2:], layer(x[[3, 2, 5, 4]])[[1, 0, 3, 2]])  # any order, any mates
        alone = torch.cat([layer(x[i : i + 1]) for i in range(len(x))])
        scale = exact.abs().amax(dim=1, keepdim=True)
        assert ((alone - layer(x)).abs() / scale).max() < 0.05  # both per token: within int8 rounding
        # and the rows beside the outlier keep their precision
        err = {
            name: (m(x)[1:] - exact[1:]).abs().max().item()
            for name, m in (("token", layer), ("call", per_call))
        }
    assert err["token"] < err["call"] / 10, err


def test_each_request_keeps_its_own_length_and_stop(batched):

    results: dict[str, object] = {}

    def run(name: str, n: int, stop_after: int | None) -> None:
        stop = threading.Event()
        gen = batched.stream(msgs(f"question {name}"), max_new_tokens=n, min_new_tokens=n, stop=stop)
        pieces = 0
        for item in gen:
            if isinstance(item, str):
                pieces += 1
                if stop_after and pieces >= stop_after:
                    stop.set()
        results[name] = gen.stats

    threads = [
        threading.Thread(target=run, args=("a", 12, None)),
        threading.Thread(target=run, args=("b", 40, None)),
        threading.Thread(target=run, args=("c", 200, 3)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results["a"].new_tokens == 12 and results["b"].new_tokens == 40
    assert results["c"].cancelled and results["c"].new_tokens < 200
    assert batched.batcher.active() == 0  # the stopped request left the batch and freed its blocks


def test_a_waiting_answer_says_how_many_are_ahead(tiny_model_dir, tmp_path):
    eng = engine(tiny_model_dir, tmp_path, llm_batch_size=1)
    try:
        first = eng.stream(msgs("a long first answer"), max_new_tokens=400, min_new_tokens=400)
        started = threading.Event()

        def consume() -> None:
            for item in first:
                if isinstance(item, str):
                    started.set()

        t = threading.Thread(target=consume)
        t.start()
        assert started.wait(60)
        second = eng.stream(msgs("the second user"), max_new_tokens=5)
        items = list(second)
        assert Waiting(1) in items, items
        assert second.text and items.index(Waiting(1)) < next(
            i for i, x in enumerate(items) if isinstance(x, str)
        )
        first.cancel()
        t.join(60)
    finally:
        eng.close()


def test_a_dead_generation_loop_fails_its_requests_and_the_next_starts_a_new_one(tiny_model_dir, tmp_path):
    eng = engine(tiny_model_dir, tmp_path)
    gen = eng.stream(msgs("never finishes"), max_new_tokens=2000, min_new_tokens=2000)
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            for item in gen:
                if isinstance(item, str) and len(gen.text) > 5:
                    eng.batcher.manager.stop(block=False, hard_stop=True)  # the loop dies under it
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=consume)
    t.start()
    t.join(60)
    assert not t.is_alive(), "a consumer of a dead loop must not hang"
    assert errors and isinstance(errors[0], BatchingError), errors
    assert "generation failed" in str(errors[0]) or "stopped" in str(errors[0])
    # The app keeps serving: the next answer starts a new loop and is written in full.
    dead = eng.batcher
    assert eng.generate(msgs("after the crash"), max_new_tokens=3, min_new_tokens=3)
    assert eng.batcher is not dead and eng.batching == "on"
    eng.close()


def test_the_batching_decision_says_why(batched, tmp_path):
    from assistant.llm.batching import batching_plan

    model = batched.model
    on = Settings(data_dir=tmp_path, llm_batching="on", llm_load_in_4bit=True)
    with pytest.raises(ValueError, match="llm_batching=on, but bitsandbytes 4-bit"):
        batching_plan(on, model, "cuda:0")
    use, why = batching_plan(Settings(data_dir=tmp_path, llm_fast_path="on"), model, "cuda:0")
    assert not use and "llm_fast_path=on" in why
    use, why = batching_plan(Settings(data_dir=tmp_path, llm_batching="off"), model, "cpu")
    assert not use and "off" in why
    assert batching_plan(Settings(data_dir=tmp_path), model, "cpu")[0]
    # On a GPU `auto` takes the compiled one-at-a-time path; asking for batching (or for the eager
    # path, where batching is the faster one) still batches.
    use, why = batching_plan(Settings(data_dir=tmp_path), model, "cuda:0")
    assert not use and "compiled one-at-a-time" in why and "llm_batching=on" in why
    assert batching_plan(Settings(data_dir=tmp_path, llm_batching="on"), model, "cuda:0")[0]
    assert batching_plan(Settings(data_dir=tmp_path, llm_fast_path="off"), model, "cuda:0")[0]


def test_greedy_steps_take_the_argmax_and_sampling_steps_still_sample(tiny_model_dir, tmp_path, monkeypatch):
    """A step whose requests are all greedy skips the softmax + draw over the vocabulary (batching.
    greedy_steps); a step with a sampling request samples as before."""
    from transformers.generation.continuous_batching import model_runner as mr

    sampled: list[bool] = []
    real = mr.ModelRunner._sample
    monkeypatch.setattr(
        mr.ModelRunner, "_sample", lambda self, *a: sampled.append(self.do_sample) or real(self, *a)
    )
    eng = engine(tiny_model_dir, tmp_path)
    try:
        eng.generate(msgs("my loss plateaus"), max_new_tokens=8, min_new_tokens=8)
        assert len(sampled) >= 8 and not any(sampled)
        sampled.clear()
        eng.generate(msgs("my loss plateaus"), max_new_tokens=8, min_new_tokens=8, temperature=1.0)
        assert len(sampled) >= 8 and all(sampled)
    finally:
        eng.close()


def test_each_answer_in_a_step_attends_only_to_its_own_keys(batched, monkeypatch):
    """Per-answer attention (llm/packed_attention.py) leaves out only fully masked blocks: answers
    batched together get the tokens that whole-step attention under the block-diagonal mask gives."""
    from transformers.modeling_utils import AttentionInterface

    from assistant.llm import packed_attention

    prompts = [[7 + (i * 13 + n) % 200 for i in range(n)] for n in (150, 90, 17)]

    def answers() -> list[list[int]]:
        # Submitted while the loop is paused, the three start in one step whatever the thread timing
        # (without the pause a busy machine can let the first finish before the others arrive).
        with batched.batcher.manager.pause():
            reqs = [batched.batcher.submit(p, max_new_tokens=12, temperature=0.0) for p in prompts]
        return [[t for step in batched.batcher.tokens(r) for t in step] for r in reqs]

    before = packed_attention.split_steps
    per_answer = answers()
    assert packed_attention.split_steps > before  # steps with several answers were split
    wrapper = AttentionInterface._global_mapping["sdpa"]
    monkeypatch.setitem(AttentionInterface._global_mapping, "sdpa", wrapper.__wrapped__)
    whole_step = answers()
    assert per_answer == whole_step and all(len(a) == 12 for a in per_answer)


def test_batched_steps_run_in_inference_mode_as_generate_does(batched):
    """The generation thread's steps skip autograd's per-op bookkeeping (no_grad alone keeps it):
    that bookkeeping made a lone batched answer decode 7% slower than one at a time."""
    import torch

    seen: list[bool] = []
    hook = batched.model.register_forward_hook(lambda m, a, o: seen.append(torch.is_inference_mode_enabled()))
    try:
        assert batched.generate(msgs("my loss plateaus"), max_new_tokens=3, min_new_tokens=3)
    finally:
        hook.remove()
    assert len(seen) >= 3 and all(seen)
