"""`assistant bench browser`: the decode rate a user sees in the page, against the engine's own.

A real Chromium (Playwright, Debian's /usr/bin/chromium as the tests use it) opens the chat, asks
each question, and a MutationObserver stamps every change of the answer bubble. The page's rate is
the answer's tokens (counted with the model's tokenizer) over the time from its first to its last
visible change; the engine's rate for the same answer is the one its status line reports. Their
ratio is what streaming to the page costs (the floor is 0.9).
"""

from __future__ import annotations

import os
import re
import statistics
import time
from pathlib import Path
from typing import Any

from assistant.measure.load import answerable_questions, free_port, start_app

CHROMIUM = "/usr/bin/chromium"
OBSERVE = """() => {
  window.__stamps = [];
  const root = document.querySelector('#chatbot') || document.body;
  new MutationObserver(() => {
    const bots = document.querySelectorAll('[data-testid="bot"]');
    const last = bots[bots.length - 1];
    if (last) window.__stamps.push([performance.now(), last.innerText.length, last.innerText]);
  }).observe(root, {subtree: true, childList: true, characterData: true});
}"""
DONE = "['✓', '🚫', '⚠️'].some(m => (document.querySelector('#status')?.innerText || '').includes(m))"


def _page_rate(stamps: list[list[Any]], count_tokens: Any) -> tuple[float, int]:
    """Tokens per second between the first and the last change of the streamed text (the final
    re-render with citation markers is left out: it is not decoding)."""
    growing = [s for s in stamps if s[1] > 0]
    if len(growing) < 2:
        return 0.0, 0
    first, last = growing[0], max(growing[:-1] or growing, key=lambda s: s[0])
    tokens = count_tokens(last[2])
    seconds = (last[0] - first[0]) / 1000
    return ((tokens - 1) / seconds if seconds > 0 and tokens > 1 else 0.0), tokens


def bench_browser(url: str | None, questions: int = 3, env: dict[str, str] | None = None) -> dict[str, Any]:
    if not os.path.exists(CHROMIUM):
        raise FileNotFoundError(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    from playwright.sync_api import sync_playwright
    from transformers import AutoTokenizer

    from assistant.llm.models import model_folder, resolve_model
    from assistant.settings import Settings

    settings = Settings()  # the app measured must run the same llm_model (its tokenizer counts)
    tokenizer = AutoTokenizer.from_pretrained(model_folder(resolve_model(settings), settings))
    count = lambda text: len(tokenizer.encode(text, add_special_tokens=False))  # noqa: E731
    proc = None
    if url is None:
        port = free_port()
        proc = start_app(env or {}, port, Path(os.environ.get("TMPDIR", "/tmp")) / "bench-browser.log")
        url = f"http://127.0.0.1:{port}/"
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("#question textarea")
            for i, question in enumerate(answerable_questions(questions + 1)):
                page.click("#clear")
                page.wait_for_function(f"!({DONE})", timeout=60_000)
                page.evaluate(OBSERVE)
                page.fill("#question textarea", question)
                start = time.perf_counter()
                page.click("#send")
                page.wait_for_function(DONE, timeout=600_000)
                if i == 0:
                    continue  # the first answer warms the page and the model up
                status = page.inner_text("#status")
                stamps = page.evaluate("window.__stamps")
                rate, tokens = _page_rate(stamps, count)
                engine = re.search(r"([\d.]+) tokens/s", status)
                rows.append(
                    {
                        "question": question,
                        "tokens": tokens,
                        "page_decode_tps": round(rate, 2),
                        "engine_decode_tps": float(engine.group(1)) if engine else 0.0,
                        "seconds": round(time.perf_counter() - start, 1),
                    }
                )
            browser.close()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
    ratios = [r["page_decode_tps"] / r["engine_decode_tps"] for r in rows if r["engine_decode_tps"]]
    return {
        "rows": rows,
        "page_vs_engine": round(statistics.median(ratios), 3) if ratios else None,
        "page_decode_tps_p50": round(statistics.median(r["page_decode_tps"] for r in rows), 2) if rows else 0,
    }
