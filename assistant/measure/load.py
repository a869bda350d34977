"""`assistant bench serve`: many users at once through the running web app's `/ask` API.

Each simulated user is its own gradio_client session asking a different goldset question. The
benchmark starts the app itself (once with batching on, once off, so both are measured in one
run on one machine) or measures a server that is already running (`--url`). It prints, per number
of users, the first token each user saw (p50/p95/max), the aggregate decode rate and the wall
time, and draws both against the number of users into a PNG.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from assistant.measure.bench import percentile
from assistant.measure.evaluation import GOLDSET_DIR, load_jsonl

START_TIMEOUT_S = 600  # the first start may convert the packaged model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env: dict[str, str], port: int, log_file: Path) -> subprocess.Popen:
    """`assistant serve` in a subprocess on loopback; returns once the page answers."""
    import urllib.request

    log = open(log_file, "w")  # noqa: SIM115 - closed with the process by the caller's exit
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited ({proc.returncode}); see {log_file}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return proc
        except OSError:
            time.sleep(1)
    proc.kill()
    raise RuntimeError(f"the app did not start in {START_TIMEOUT_S} s; see {log_file}")


POLL_S = 0.01  # how often a simulated user looks for new text: the first-token figures' resolution


def updates(job: Any) -> Iterator[Any]:
    """A gradio_client job's updates as they arrive, looked for every POLL_S.

    Not `for update in job`: gradio_client's iterator spins on a 1 ms sleep, so four simulated users
    on the server's own 2 cores took ~10% of its CPU and slowed the very prefill they were timing (the
    slowest of four first tokens 4.9 s against 4.45 s polling here). A browser waits on its socket.
    """
    seen = 0
    while True:
        done = job.done()  # read before the outputs, so none that came in between is missed
        outputs = job.outputs()
        yield from outputs[seen:]
        seen = len(outputs)
        if done:
            return
        time.sleep(POLL_S)


@contextmanager
def started_app(env: dict[str, str], name: str) -> Iterator[str]:
    """A freshly started app for the block; yields its address and stops it after."""
    port = free_port()
    proc = start_app(env, port, Path(os.environ.get("TMPDIR", "/tmp")) / f"{name}.log")
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(30)


def one_user(url: str, question: str, out: dict[str, Any], barrier: threading.Barrier) -> None:
    """Ask one question in a fresh session; record when the first text and the answer arrived."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    barrier.wait()
    start = time.perf_counter()
    job = client.submit(question, "[]", api_name="/ask")
    first = None
    final: dict[str, Any] = {}
    for update in updates(job):
        if first is None and update and not update.lstrip().startswith("{"):
            first = time.perf_counter() - start
        if update and update.lstrip().startswith("{"):
            final = json.loads(update)
    total = time.perf_counter() - start
    timings = final.get("timings", {})
    tokens = int(timings.get("new_tokens", 0))
    streaming = total - first if first is not None else 0.0
    out.update(
        decode_tps=(tokens - 1) / streaming if tokens > 1 and streaming > 0 else 0.0,
        first_token_s=first if first is not None else total,
        total_s=total,
        new_tokens=tokens,
        abstained=bool(final.get("abstained")),
        answer=final.get("answer", ""),
    )


def run_users(url: str, questions: list[str]) -> dict[str, Any]:
    results: list[dict[str, Any]] = [{} for _ in questions]
    barrier = threading.Barrier(len(questions))
    threads = [
        threading.Thread(target=one_user, args=(url, q, r, barrier))
        for q, r in zip(questions, results, strict=True)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    firsts = [r["first_token_s"] for r in results]
    tokens = sum(r["new_tokens"] for r in results)
    return {
        "users": len(questions),
        "first_token_p50_s": round(statistics.median(firsts), 2),
        "first_token_p95_s": round(percentile(firsts, 95), 2),
        "first_token_max_s": round(max(firsts), 2),
        "wall_s": round(wall, 2),
        "tokens": tokens,
        "aggregate_tokens_per_s": round(tokens / wall, 2) if wall else 0.0,
        "user_decode_tps_p50": round(statistics.median(r["decode_tps"] for r in results), 2),
        "abstained": sum(r["abstained"] for r in results),
    }


def run_alone(url: str, questions: list[str]) -> dict[str, Any]:
    """Each question asked by one user with nobody else, in turn. The lone figures the floors divide
    by are medians over these, so one slow sample does not decide a ratio, and they cover the same
    questions the users at once ask."""
    trials = [run_users(url, [q]) for q in questions]

    def med(key: str) -> float:
        return round(statistics.median(t[key] for t in trials), 2)

    firsts = [t["first_token_max_s"] for t in trials]
    return {
        "users": 1,
        "trials": len(trials),
        "first_token_p50_s": med("first_token_max_s"),
        "first_token_p95_s": round(percentile(firsts, 95), 2),
        "first_token_max_s": round(max(firsts), 2),
        "wall_s": med("wall_s"),
        "tokens": int(statistics.median(t["tokens"] for t in trials)),
        "aggregate_tokens_per_s": med("aggregate_tokens_per_s"),
        "user_decode_tps_p50": med("user_decode_tps_p50"),
        "abstained": sum(t["abstained"] for t in trials),
    }


def answerable_questions(n: int) -> list[str]:
    """The first `n` goldset questions about different passages (the goldset groups several wordings
    of one question together): different users asking about different things, and, with the prefix
    cache on, prompts that share nothing but the system prompt."""
    seen: set[tuple[str, str]] = set()
    picked = []
    for row in load_jsonl(GOLDSET_DIR / "retrieval.jsonl"):
        passage = (row["gold"][0]["source"], row["gold"][0]["title"])
        if passage not in seen:
            seen.add(passage)
            picked.append(row["question"])
    return picked[:n]


def measure_row(url: str, users: int, questions: list[str]) -> dict[str, Any]:
    """One user asking the questions in turn (users == 1), or that many users at once."""
    return run_alone(url, questions) if users == 1 else run_users(url, questions)


def question_plan(users: list[int], alone: int, *, fresh: bool) -> dict[int | str, list[str]]:
    """The questions of the warm-up ("warm"), of one user alone (1) and of n users at once (n).

    `fresh`: no question is asked twice in the run; else every run starts from the same first ones.
    The warm-up question is never one a run asks.
    """
    counts = [alone if n == 1 else n for n in users]
    need = 1 + (sum(counts) if fresh else max(counts))
    pool = answerable_questions(need)
    if len(pool) < need:
        raise ValueError(f"the goldset has {len(pool)} questions; this run needs {need}")
    plan: dict[int | str, list[str]] = {"warm": pool[-1:]}
    start = 0
    for n, c in zip(users, counts, strict=True):
        plan[n] = pool[start : start + c]
        start += c if fresh else 0
    return plan


def bench_serve(
    users: list[int],
    *,
    url: str | None = None,
    modes: tuple[str, ...] = ("on", "off"),
    max_new_tokens: int = 96,
    plot: Path | None = None,
    env: dict[str, str] | None = None,
    alone: int = 4,
    prefix_cache: bool = True,
) -> dict[str, Any]:
    """Figures for each mode and number of users; the app is started per mode (per row with the
    prefix cache on) unless `url` is given.

    Each row (one user alone `alone` times in turn, or n users at once) asks questions about
    different passages. A prefix cache must find in a row's prompts only what every prompt shares
    (the system prompt), as for any user of a running app, never a prompt the row before asked: so
    with `prefix_cache` (as the app ships) every row gets a freshly started app, warmed by a question
    no row asks, and all rows ask the same first questions, both sides of a ratio the same prompts.
    An app already running (`url`) cannot be restarted: there every row asks new questions instead.
    """
    alone = max(alone, 1)
    plans = question_plan(users, alone, fresh=url is not None)

    def measure(target: str, rows: list[int]) -> list[dict[str, Any]]:
        run_users(target, plans["warm"])  # warm: first-request overheads are not a user's cost
        return [measure_row(target, n, plans[n]) for n in rows]

    runs: dict[str, list[dict[str, Any]]] = {}
    if url is not None:
        runs["as served"] = measure(url, users)
    else:
        for mode in modes:
            env_mode = {
                **(env or {}),
                "ASSISTANT_LLM_BATCHING": mode,
                "ASSISTANT_LLM_PREFIX_CACHE": str(prefix_cache).lower(),
                "ASSISTANT_LLM_MAX_NEW_TOKENS": str(max_new_tokens),
            }
            runs[mode] = []
            for rows in [[n] for n in users] if prefix_cache else [users]:
                name = f"bench-serve-{mode}-{'-'.join(map(str, rows))}"  # one log per started app
                with started_app(env_mode, name) as target:
                    runs[mode] += measure(target, rows)
    result = {
        "users": users,
        "max_new_tokens": max_new_tokens,
        "alone": alone,
        "prefix_cache": prefix_cache if url is None else "as served",
        "runs": runs,
        "floors": floors(runs),
    }
    if plot is not None:
        draw(result, plot)
        result["plot"] = str(plot)
    return result


def floors(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The issue's floors, read from one run: 4 users against one (the median of the questions
    asked alone), and batching on against off."""
    lines = []
    for mode, rows in runs.items():
        by = {r["users"]: r for r in rows}
        if 1 in by and 4 in by:
            lone, four = by[1], by[4]
            # one user's p50: the median over the questions asked alone (run_alone)
            first = four["first_token_max_s"] / max(lone["first_token_p50_s"], 1e-9)
            wall = four["wall_s"] / max(lone["wall_s"], 1e-9)
            lines.append(
                f"batching {mode}, 4 users: slowest first token {first:.2f}x a lone user's (floor <= 4), "
                f"all four done in {wall:.2f}x a lone answer's time (floor <= 3); lone: median of "
                f"{lone.get('trials', 1)} questions asked alone"
            )
    lone = {mode: next((r for r in rows if r["users"] == 1), None) for mode, rows in runs.items()}
    if lone.get("on") and lone.get("off"):
        ratio = lone["on"]["user_decode_tps_p50"] / max(lone["off"]["user_decode_tps_p50"], 1e-9)
        lines.append(f"one user alone: decode with batching on = {ratio:.2f}x off (floor >= 0.9)")
    return lines


def draw(result: dict[str, Any], path: Path) -> None:
    """Slowest first token and aggregate decode rate against users, one line per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for mode, rows in result["runs"].items():
        xs = [r["users"] for r in rows]
        firsts = [r["first_token_p50_s" if r["users"] == 1 else "first_token_max_s"] for r in rows]
        left.plot(xs, firsts, marker="o", label=f"batching {mode}")
        right.plot(xs, [r["aggregate_tokens_per_s"] for r in rows], marker="o", label=f"batching {mode}")
    left.set(
        xlabel="users at once",
        ylabel="slowest first token (s); 1 user: median alone",
        title="Waiting for the first token",
    )
    right.set(xlabel="users at once", ylabel="tokens/s, all users", title="Aggregate decode rate")
    for ax in (left, right):
        ax.set_xticks(result["users"])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
