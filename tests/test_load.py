"""Eight people at once through the running web app's API: each has a two-turn conversation with its
own question, and gets exactly the answers and sources it gets alone, while a ninth stops mid-answer.

Real parts: the Gradio server on loopback, one gradio_client per session, the tiny random model with
continuous batching on fp32 weights, greedy decoding so that an answer is a fact that can be
compared: any text from another session, or a batch-mate changing an answer, breaks equality.

fp32 is set, not left to `llm_dtype=auto`: on a CPU with native bf16 `auto` loads bf16 weights, whose
rounding (about 1/256 of a value) turns the last-bit differences between a prompt computed alone and
one computed beside others (prefill split across steps, cache blocks reused) into a different
greedy pick wherever the random model's two best next tokens are nearly tied: a correct program
that fails now and then. int8's lone one-row steps round differently from batched ones too
(llm/quantize.py).
"""

from __future__ import annotations

import gc
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from assistant.measure.evaluation import GOLDSET_DIR, load_jsonl
from assistant.measure.load import free_port
from assistant.settings import Settings

SESSIONS = 8
TIMEOUT_S = 300  # every loop below is bounded


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder, tiny_model_dir):
    """The app with its own engine: batching on, fp32 weights (see the module docstring), greedy,
    answers long enough that eight of them overlap."""
    from assistant.core import Assistant
    from assistant.llm.engine import LLMEngine
    from assistant.web.app import build_app, launch

    s = Settings(
        data_dir=tmp_path_factory.mktemp("load"),
        llm_model=str(tiny_model_dir),
        llm_temperature=0.0,
        llm_max_new_tokens=64,
        llm_quantize="off",
        llm_dtype="float32",
        # free answers, every written sentence shown: the model's text streams from its first words,
        # so the ninth session's Stop lands mid-answer (a quoted answer shows its quotes before the
        # model starts, then one short sentence; tests/test_writing.py covers that style)
        answer_style="free",
        entail_threshold=0.0,
        entail_llm=False,
    )
    engine = LLMEngine(s)
    assert engine.batching == "on" and engine.dtype == "float32", engine.describe()
    generations: list[Any] = []
    stream = engine.stream

    def recording_stream(*args: Any, **kw: Any) -> Any:  # keeps each Generation to read its stats
        gen = Watched(stream(*args, **kw), str(args[0] if args else kw.get("messages")))
        generations.append(gen)
        return gen

    engine.stream = recording_stream  # type: ignore[method-assign]
    assistant = Assistant(s, embedder=embedder, llm=engine)
    assistant.ingest()
    demo = build_app(assistant)
    port = free_port()
    launch(demo, "127.0.0.1", port, block=False)
    yield f"http://127.0.0.1:{port}", engine, generations
    demo.close()
    engine.close()


STOPPED_QUESTION = "How do I choose a learning rate schedule for a long run?"
CANCEL_SENT = threading.Event()  # the ninth session is about to press Stop


class Watched:
    """A Generation whose streamed pieces are counted as they come, with the prompt it answers: the
    test can see on the server that an answer is under way (its text may be held back until a
    sentence is complete and checked, so the client sees nothing yet)."""

    def __init__(self, generation: Any, prompt: str) -> None:
        self.generation, self.prompt, self.pieces = generation, prompt, 0

    def __iter__(self) -> Any:
        stopped = STOPPED_QUESTION in self.prompt
        for piece in self.generation:
            self.pieces += 1
            if stopped and self.pieces > 2:
                # The stopped answer waits for the client's Stop, then reads slowly, so that the Stop
                # (which the server acts on at the answer's next step) finds it still answering
                # however busy the machine is.
                CANCEL_SENT.wait(TIMEOUT_S)
                time.sleep(0.2)
            yield piece

    def __getattr__(self, name: str) -> Any:
        return getattr(self.generation, name)


def _ask(client: Any, question: str, history: list[dict[str, str]]) -> dict[str, Any]:
    """One turn through /ask: the streamed texts (each must extend the previous) and the final Answer."""
    texts: list[str] = []
    final: dict[str, Any] = {}
    for update in client.submit(question, json.dumps(history), api_name="/ask"):
        if update.lstrip().startswith("{"):
            final = json.loads(update)
        else:
            assert not texts or update.startswith(texts[-1]), "a stream only ever grows"
            texts.append(update)
    assert final, f"no final answer for {question!r}"
    return {"streamed": texts[-1] if texts else "", "final": final}


def _conversation(url: str, turns: list[dict[str, str]], out: dict[str, Any], start: threading.Event) -> None:
    from gradio_client import Client

    try:
        client = Client(url, verbose=False)
        start.wait(TIMEOUT_S)
        first = _ask(client, turns[0]["content"], [])
        history = [turns[0], {"role": "assistant", "content": first["final"]["answer"]}]
        second = _ask(client, turns[2]["content"], history)
        out["turns"] = [first, second]
    except Exception as exc:  # noqa: BLE001 - reported by the test, with the session it came from
        out["error"] = repr(exc)


def _essence(turn: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on who else is asking: the text, the question searched, the sources."""
    f = turn["final"]
    return {
        "streamed": turn["streamed"],
        "answer": f["answer"],
        "standalone_question": f["standalone_question"],
        "abstained": f["abstained"],
        "sources": [(s["unit_id"], s["n"]) for s in f["sources"]],
        "consulted": [s["unit_id"] for s in f["consulted"]],
    }


def _run_at_once(url: str, conversations: list[list[dict[str, str]]], also: Any = None) -> list[dict]:
    results: list[dict[str, Any]] = [{} for _ in conversations]
    start = threading.Event()
    threads = [
        threading.Thread(target=_conversation, args=(url, c, r, start), daemon=True)
        for c, r in zip(conversations, results, strict=True)
    ]
    extra = threading.Thread(target=also, args=(start,), daemon=True) if also else None
    for t in [*threads, *([extra] if extra else [])]:
        t.start()
    time.sleep(1.0)  # every client has connected and waits at the start line
    start.set()
    deadline = time.monotonic() + TIMEOUT_S
    for t in [*threads, *([extra] if extra else [])]:
        t.join(max(0.0, deadline - time.monotonic()))
        assert not t.is_alive(), "a session did not finish in time"
    return results


@pytest.mark.slow
def test_eight_sessions_at_once_each_get_their_own_answers_and_a_stop_disturbs_none(served):
    url, engine, generations = served
    conversations = [row["turns"] for row in load_jsonl(GOLDSET_DIR / "conversations.jsonl")][:SESSIONS]
    assert len({c[0]["content"] for c in conversations}) == SESSIONS

    # Alone, one after another: what each conversation must get, whoever else is asking.
    alone = []
    for conv in conversations:
        out: dict[str, Any] = {}
        ready = threading.Event()
        ready.set()
        _conversation(url, conv, out, ready)
        assert "error" not in out, out
        alone.append(out)
    assert engine.batcher.active() == 0

    # All eight at once, three times, plus a ninth session that presses Stop after its first words.
    # The first round fills the server's bounded thread pools; after it nothing may grow.
    stopped: dict[str, Any] = {}
    baseline_mb, baseline_threads = 0.0, Counter[str]()

    def stopper(start: threading.Event) -> None:
        from gradio_client import Client

        question = STOPPED_QUESTION
        client = Client(url, verbose=False)
        start.wait(TIMEOUT_S)
        first = len(generations)  # this round's answers only
        job = client.submit(question, "[]", api_name="/ask")
        # Stop once the server is generating this answer (its first pieces are out), whatever the
        # client has been shown by then
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline and not job.done():
            if any(question in g.prompt and g.pieces >= 2 for g in generations[first:]):
                CANCEL_SENT.set()  # first: the server answers a cancel once the answer's current step ends
                stopped["cancelled"] = job.cancel()
                break
            time.sleep(0.01)

    for round_ in range(3):
        if round_ == 1:
            gc.collect()
            baseline_mb, baseline_threads = _rss_mb(), Counter(t.name for t in threading.enumerate())
        before = len(generations)
        stopped.clear()
        CANCEL_SENT.clear()
        together = _run_at_once(url, conversations, also=stopper if round_ < 2 else None)
        for i, (solo, many) in enumerate(zip(alone, together, strict=True)):
            assert "error" not in many, (i, many)
            for turn in range(2):
                got, want = _essence(many["turns"][turn]), _essence(solo["turns"][turn])
                # the same text, searched question and sources as alone: only its own, nobody else's
                assert got == want, f"session {i}, turn {turn + 1}: differs from the same conversation alone"
        if round_ < 2:
            assert stopped.get("cancelled"), "the ninth session pressed Stop mid-answer"
            # the stopped answer really ended early on the server, not merely on the client
            mine = [g for g in generations[before:] if g.stats.cancelled]
            assert mine and all(g.stats.new_tokens < 64 for g in mine), [g.stats for g in mine]

    # Nothing is left behind: no request in the batch, no thread, memory back near its baseline.
    def extra_threads() -> Counter[str]:
        """Threads beyond the baseline, but for two bounded pools that start workers one at a time as
        they find the others busy: each retriever's store-version pool (max_workers=4) and AnyIO's
        worker threads behind the server's sync handlers (at most its 40 tokens)."""
        extra = Counter(t.name for t in threading.enumerate()) - baseline_threads
        return Counter(
            {
                n: c
                for n, c in extra.items()
                if not n.startswith("store-version_") and not (n == "AnyIO worker thread" and c <= 40)
            }
        )

    deadline = time.monotonic() + 30
    while (engine.batcher.active() or extra_threads()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert engine.batcher.active() == 0
    assert not extra_threads(), extra_threads()
    gc.collect()
    grown = _rss_mb() - baseline_mb
    assert grown < 0.1 * baseline_mb, f"memory grew by {grown:.0f} MB over a {baseline_mb:.0f} MB baseline"


def test_bench_serve_measures_a_running_app_and_draws_the_plot(served, tmp_path):
    """`assistant bench serve --url`: per-user first token and decode rates through /ask, and the PNG."""
    from typer.testing import CliRunner

    from assistant.cli import app

    url, engine, _ = served
    plot = tmp_path / "serve.png"
    result = CliRunner().invoke(
        app,
        ["bench", "serve", "--users", "1,4", "--alone", "3", "--url", url, "--plot", str(plot), "--json"],
    )
    assert result.exit_code == 0, result.output
    res = json.loads(result.output[result.output.index("{") :])
    lone, four = res["runs"]["as served"]
    assert (lone["users"], lone["trials"], four["users"]) == (1, 3, 4)  # one user: three questions in turn
    assert 0 < four["first_token_p50_s"] <= four["first_token_max_s"] <= four["wall_s"]
    assert (
        0 < lone["first_token_p50_s"] <= lone["first_token_max_s"]
        and lone["first_token_p50_s"] < lone["wall_s"]
    )
    for r in (lone, four):
        assert r["tokens"] > 0 and r["aggregate_tokens_per_s"] > 0 and r["user_decode_tps_p50"] > 0
    ratio = four["first_token_max_s"] / lone["first_token_p50_s"]  # the floor divides by the lone median
    assert (
        f"slowest first token {ratio:.2f}x" in res["floors"][0]
        and "median of 3 questions" in res["floors"][0]
    )
    assert plot.read_bytes().startswith(b"\x89PNG") and res["plot"] == str(plot)
    assert engine.batcher.active() == 0
    bad = CliRunner().invoke(app, ["bench", "serve", "--users", "two", "--url", url])
    assert bad.exit_code == 2 and "--users takes numbers" in bad.output


@pytest.mark.slow
def test_bench_browser_reads_the_rate_a_page_sees(served, tiny_model_dir, monkeypatch):
    """`assistant bench browser --url`: Chromium stamps each change of the answer; the page's rate and
    the engine's own rate for the same answer are both read."""
    from typer.testing import CliRunner

    from assistant.cli import app
    from assistant.measure.browser import CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.skip("BROWSER BENCHMARK SKIPPED: Debian's chromium is not installed (`make browser`)")
    url, _, _ = served
    monkeypatch.setenv("ASSISTANT_LLM_MODEL", str(tiny_model_dir))  # the tokenizer that counts
    result = CliRunner().invoke(app, ["bench", "browser", "--url", url, "--questions", "2", "--json"])
    assert result.exit_code == 0, result.output
    # the served app shares this process, so its log lines can follow the JSON in the captured output
    res, _ = json.JSONDecoder().raw_decode(result.output[result.output.index("{") :])
    assert len(res["rows"]) == 2
    for r in res["rows"]:
        assert r["tokens"] > 1 and r["page_decode_tps"] > 0 and r["engine_decode_tps"] > 0
    assert res["page_vs_engine"] > 0


def test_bench_serve_rows_never_find_another_rows_prompt_in_the_prefix_cache():
    """With a prefix cache a row must not reuse a prompt an earlier row computed: on one running app
    every row asks new questions; the warm-up never asks one a row asks; and the questions are about
    different passages, so two of them share no sources either."""
    from assistant.measure.load import answerable_questions, question_plan

    gold = {
        r["question"]: (r["gold"][0]["source"], r["gold"][0]["title"])
        for r in load_jsonl(GOLDSET_DIR / "retrieval.jsonl")
    }
    picked = answerable_questions(20)
    assert len(picked) == 20 and len({gold[q] for q in picked}) == 20

    fresh = question_plan([1, 2, 4, 8], 4, fresh=True)
    rows = [fresh[n] for n in (1, 2, 4, 8)]
    assert [len(r) for r in rows] == [4, 2, 4, 8]
    asked = [q for r in [*rows, fresh["warm"]] for q in r]
    assert len(asked) == len(set(asked)) == 19

    same = question_plan([1, 4], 4, fresh=False)  # each row on its own freshly started app
    assert same[1] == same[4] and same["warm"][0] not in same[4]
