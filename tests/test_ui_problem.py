"""The problem card in a real browser (Playwright driving Debian's Chromium) against the real app with
the tiny model: a fact stated in the chat shows on the card, a hand edit is saved, survives a reload,
and is what the next turn uses; New chat empties the card."""

from __future__ import annotations

# the app, the browser and the page helpers of the main UI tests (a fresh app for this module)
from test_ui import app_url, ask, browser, page, wait_done  # noqa: F401


def box(pg, key: str) -> str:
    return pg.input_value(f"#problem-{key} textarea")


def wait_box(pg, key: str, value: str, timeout: float = 30) -> None:
    pg.wait_for_function(
        f"document.querySelector('#problem-{key} textarea')?.value === {value!r}", timeout=timeout * 1000
    )


def test_a_stated_fact_shows_on_the_card_an_edit_survives_a_reload_and_the_next_turn_uses_it(
    page,  # noqa: F811
    app_url,  # noqa: F811
    monkeypatch,
):
    _, assistant = app_url
    ask(page, "I have a 6 GB GPU and train a ResNet-50. My GPU keeps running out of memory, what can I do?")
    wait_done(page)
    wait_box(page, "memory", "6 GB GPU memory")
    assert box(page, "model") == "ResNet-50" and box(page, "batch_size") == ""

    page.fill("#problem-memory textarea", "8 GB GPU memory")
    page.fill("#problem-batch_size textarea", "16")
    page.click("#problem-save")
    page.wait_for_function(
        "(document.querySelector('#problem-status')?.innerText || '').includes('Saved')", timeout=30_000
    )

    page.reload()  # the conversation's id is in the address bar: the page brings it and its card back
    page.wait_for_selector("#question textarea")
    wait_box(page, "memory", "8 GB GPU memory")
    assert box(page, "batch_size") == "16" and box(page, "model") == "ResNet-50"

    seen = []
    chain = assistant.chain
    real = chain.stream
    monkeypatch.setattr(
        chain, "stream", lambda q, h=None, **kw: seen.append(kw.get("problem")) or real(q, h, **kw)
    )
    ask(page, "Which batch size should I try?")
    wait_done(page)
    assert seen and seen[-1]["memory"] == "8 GB GPU memory" and seen[-1]["batch_size"] == "16"
    assert box(page, "memory") == "8 GB GPU memory"  # the hand edit stays

    page.click("#clear")
    wait_box(page, "memory", "")
    assert box(page, "model") == "" and box(page, "batch_size") == ""
