"""The web app: rendering, upload safety, the API through gradio_client, and a real browser
(Playwright driving Debian's Chromium) against the real app with the tiny model."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
import urllib.parse
import urllib.request

import pytest

from assistant.settings import PROJECT_DIR, Settings
from assistant.web.documents_tab import safe_name
from assistant.web.render import answer_markdown, conversation_markdown, details_markdown, sources_html

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- no browser ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\evil.md", "evil.md"),
        ("/abs/path/notes.md", "notes.md"),
        (".hidden.md", "hidden.md"),
        ("we$ird <name>.txt", "we_ird _name_.txt"),
        ("..", "document.txt"),
    ],
)
def test_uploaded_names_cannot_leave_the_uploads_folder(name, expected):
    assert safe_name(name) == expected


def _answer(**kw):
    base = {
        "answer": "Use float16 [1]. The moon is cheese [1].",
        "abstained": False,
        "standalone_question": "how to save memory?",
        "rewritten": True,
        "sources": [
            {
                "n": 1,
                "title": "RAM <question>",
                "doc_title": "FAQ",
                "source": "faq.md",
                "score": 0.8,
                "support": 0.9,
                "text": "Use half precision. Batch data.",
                "span": "Use half precision.",
                "span_start": 0,
                "span_end": 19,
                "unit_id": "u1",
            }
        ],
        "consulted": [],
        "unsupported": [{"sentence": "The moon is cheese.", "support": 0.1}],  # as finalize stores it
        "notices": [],
        "timings": {
            "retrieve_ms": 12,
            "rewrite_ms": 900,
            "first_token_ms": 1500,
            "total_ms": 4000,
            "tokens_per_s": 9.5,
        },
    }
    return {**base, **kw}


def test_rendering_marks_unsupported_sentences_spans_and_abstentions():
    a = _answer()
    md = answer_markdown(a)
    assert 'Use float16 [1]. <mark class="unsupported"' in md and "The moon is cheese [1].</mark> ⚠️" in md
    html = sources_html(a)
    assert "<mark>Use half precision.</mark>" in html and "RAM &lt;question&gt;" in html  # escaped
    details = details_markdown(a)
    assert "how to save memory?" in details and "900 ms" in details and "9.5" in details
    abstained = answer_markdown(_answer(abstained=True, answer="Not covered."))
    assert abstained.startswith("🚫 **Not covered by the documents.**")
    assert "did not answer" in sources_html(_answer(abstained=True))


def test_conversation_exports_as_markdown_with_sources():
    md = conversation_markdown([{"question": "how to save memory?", "answer": _answer(), "index": 1}])
    assert "**You:** how to save memory?" in md
    assert "**Assistant:** Use float16 [1]. The moon is cheese [1]." in md and "<mark" not in md
    assert "[1] RAM <question> (faq.md): “Use half precision.”" in md


def test_unsupported_sentences_are_marked_in_the_chains_real_output(indexed):
    """On real `finalize` output: the chain reports the sentence without its markers, while the
    answer shows it with them; the mark used to never match."""
    from assistant.chat.chain import RagChain, Source

    chain = RagChain(indexed, indexed.settings)
    ram = indexed.search("my model training takes too much RAM", k=1)[0]
    src = Source(1, ram.unit_id, ram.source, ram.doc_title, ram.title, ram.text, ram.relevance)
    raw = (
        "Use half-precision floating-point format to reduce memory usage [1]. "
        "The moon is made of green cheese and orbits Jupiter [1]."
    )
    answer = chain.finalize(raw, [src]).to_dict()
    assert [u["sentence"] for u in answer["unsupported"]] == [
        "The moon is made of green cheese and orbits Jupiter."
    ]
    md = answer_markdown(answer)
    assert md.count('<mark class="unsupported"') == 1
    assert (
        '<mark class="unsupported" title="not supported by the cited source">'
        "The moon is made of green cheese and orbits Jupiter [1].</mark> ⚠️" in md
    )
    # the supported sentence is left alone
    assert md.startswith("Use half-precision floating-point format to reduce memory usage [1]. <mark")


def test_dockerfile_installs_what_the_readme_installs():
    import re
    import shlex

    text = (PROJECT_DIR / "Dockerfile").read_text()
    # Instructions only: comments never satisfy a check, continuation lines are joined.
    lines = re.sub(r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")))
    instructions = [ln.strip().split(None, 1) for ln in lines.splitlines() if ln.strip()]
    # build arguments at their defaults: what `docker build .` (the README's command) builds
    args = dict(a.split("=", 1) for op, a in instructions if op.upper() == "ARG" and "=" in a)

    def resolve(arg: str) -> str:
        arg = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), arg)  # inner ones first
        return re.sub(r"\$\{(\w+):\+([^}]*)\}", lambda m: m.group(2) if args.get(m.group(1)) else "", arg)

    ops = {op.upper(): [] for op, _ in instructions}
    for op, arg in instructions:
        ops[op.upper()].append(resolve(arg))
    make = (PROJECT_DIR / "Makefile").read_text()
    recipe = make.split("$(STAMP): pyproject.toml", 1)[1].split("\n\n", 1)[0]
    pin = re.search(r'"(torch==[\d.]+)"', recipe)
    assert pin and '-e ".[offline-model,test]"' in recipe
    install = " ".join(ops["RUN"])
    # the image installs what `make run` installs: the Makefile's torch pin first, then the package
    # with the packaged model (the test extras are the suite's, not the app's)
    assert f'"{pin.group(1)}"' in install, "the image must pin torch as the Makefile does"
    assert '-e ".[offline-model]"' in install and install.index(pin.group(1)) < install.index("-e ")
    copied = {shlex.split(arg)[0] for arg in ops["COPY"]} | {
        w for arg in ops["COPY"] for w in shlex.split(arg)[:-1]
    }
    assert {"pyproject.toml", "assistant", "corpus", "prompts"} <= copied
    # `docker run --gpus all` (README) only helps if the image is a CUDA one that torch can use.
    assert len(ops["FROM"]) == 1 and re.match(r"nvidia/cuda:[\w.]+-(cudnn-)?runtime-", ops["FROM"][0])
    env = " ".join(ops["ENV"])
    assert (
        "ASSISTANT_HOST=0.0.0.0" in env and "ASSISTANT_DATA_DIR=/data" in env and "HF_HOME=/hf-cache" in env
    )
    assert {"/data", "/hf-cache"} <= set(re.findall(r"/[\w-]+", " ".join(ops["VOLUME"])))
    assert ops["EXPOSE"] == ["7860"] and ops["CMD"] == ['["make", "run"]']
    assert any("/healthz" in h for h in ops["HEALTHCHECK"])
    readme = (PROJECT_DIR / "README.md").read_text()
    build = re.search(r"^docker build -t (\S+) \.$", readme, re.M)
    run = re.search(r"^docker run (.+)$", readme, re.M)
    assert build and run and "--gpus all" in run.group(1) and run.group(1).endswith(build.group(1))
    assert "-p 7860:7860" in run.group(1) and ":/data" in run.group(1) and ":/hf-cache" in run.group(1)


# -- the real app ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, embedder, tiny_engine):
    """The app in the Docker layout: its data_dir is neither under the working directory nor under
    the system temp dir (Gradio serves files only from those, or from launch's allowed_paths)."""
    from assistant.core import Assistant
    from assistant.web.app import build_app, launch

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("system-tmp")))
        data_dir = tmp_path_factory.mktemp("app")  # created before: no longer inside "the temp dir"
        assert not data_dir.is_relative_to(tempfile.gettempdir()) and not data_dir.is_relative_to(os.getcwd())
        s = Settings(data_dir=data_dir, llm_max_new_tokens=320)  # long enough to watch
        assistant = Assistant(s, embedder=embedder, llm=tiny_engine)
        assistant.ingest()
        demo = build_app(assistant)
        port = _free_port()
        launch(demo, "127.0.0.1", port, block=False)
        yield f"http://127.0.0.1:{port}", assistant
        demo.close()


def test_api_streams_through_gradio_client(app_url):
    from gradio_client import Client

    url, _ = app_url
    client = Client(url, verbose=False)
    job = client.submit(
        "How can I ensure the reproducibility of my deep learning project?", "[]", api_name="/ask"
    )
    outputs = []
    for out in job:
        outputs.append(out)
    final = json.loads(outputs[-1])
    # partial results arrive before the end: the quoted passages first, as the answer begins
    assert len(outputs) >= 2 and final["answer"].startswith(outputs[0].strip())
    assert final["sources"][0]["title"] == "How can I ensure the reproducibility of my deep learning project?"
    assert not final["abstained"]
    off = json.loads(list(client.submit("Who painted the Mona Lisa?", "[]", api_name="/ask"))[-1])
    assert off["abstained"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(
            "BROWSER TESTS SKIPPED: Debian's chromium is not installed (`apt-get install chromium`; "
            "`make test` installs it where it can)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.fixture()
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    outside: list[str] = []
    pg.on(
        "request",
        lambda r: (
            outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None
        ),
    )
    pg.goto(app_url[0])
    pg.wait_for_selector("#question textarea")
    yield pg
    assert outside == [], f"the page fetched from outside the machine: {outside[:5]}"
    context.close()


def ask(pg, question: str) -> None:
    before = pg.locator('[data-testid="bot"]').count()
    pg.fill("#question textarea", question)
    pg.click("#send")
    pg.wait_for_function(
        f"document.querySelectorAll('[data-testid=\"bot\"]').length > {before}", timeout=60_000
    )


def wait_done(pg, timeout: float = 120) -> str:
    """Until the status line says the answer is complete; returns it."""
    pg.wait_for_function(
        "['✓', '🚫', '⚠️'].some(m => (document.querySelector('#status')?.innerText || '').includes(m))",
        timeout=timeout * 1000,
    )
    return pg.inner_text("#status")


def open_details(pg) -> str:
    pg.click("#details-accordion button, #details-accordion .label-wrap")
    pg.wait_for_selector("#details")
    return pg.inner_text("#details")


def test_chat_streams_an_answer_and_shows_its_sources(page):
    ask(page, "How can I ensure the reproducibility of my deep learning project?")
    # the bubble as it first shows, then as it grows (a busy machine may see it only once, complete)
    seen: set[str] = {page.locator('[data-testid="bot"]').last.inner_text()}
    deadline = time.time() + 60
    while time.time() < deadline and "✓" not in page.inner_text("#status"):
        seen.add(page.locator('[data-testid="bot"]').last.inner_text())
        time.sleep(0.05)
    assert "✓" in wait_done(page)
    # the quoted passages first (shown before the model runs), then whatever the check let through:
    # every state of the bubble the page showed starts with them and grows into the final answer
    final = page.locator('[data-testid="bot"]').last.inner_text()
    states = [s for s in seen if s.strip()]
    assert states and final.startswith("From “"), final[:200]
    assert all(s.startswith("From “") and final.startswith(s.strip()[:40]) for s in states), states
    sources = page.inner_text("#sources")
    assert "How can I ensure the reproducibility of my deep learning project?" in sources
    assert page.locator("#sources mark").count() >= 1  # the supporting span is highlighted
    assert "Searched for" in open_details(page)


def test_follow_up_uses_this_tabs_history(page):
    ask(page, "My GPU keeps running out of memory while training, what can I do?")
    wait_done(page)
    ask(page, "how does the second one work?")
    wait_done(page)
    assert "Follow-up rewritten: yes" in open_details(page)
    assert "My model training takes too much RAM" in page.inner_text("#sources")


def test_two_tabs_never_see_each_others_conversation(browser, app_url):
    ctx = browser.new_context()
    a, b = ctx.new_page(), ctx.new_page()
    for pg in (a, b):
        pg.goto(app_url[0])
        pg.wait_for_selector("#question textarea")
    ask(a, "How do I choose the right loss function for my project?")
    wait_done(a)
    ask(b, "Are there alternatives to Pytorch?")
    wait_done(b)
    text_a, text_b = a.inner_text("#chatbot"), b.inner_text("#chatbot")
    assert "loss function" in text_a and "Pytorch" not in text_a
    assert "Pytorch" in text_b and "loss function" not in text_b
    ctx.close()


def test_stop_ends_a_long_answer_early(page, app_url, monkeypatch):
    # The tiny model writes a whole answer faster than a browser round trip: make each model step
    # take 30 ms, as on a slow machine (a hook on the model, so the batched loop and the
    # one-at-a-time path both slow down), and never end before max_new_tokens (both paths: the
    # batched engine ignores EOS then), so there is an answer to stop.
    engine = app_url[1].llm
    params = engine.generation_params
    monkeypatch.setattr(
        engine,
        "generation_params",
        lambda *a, **kw: {**(p := params(*a, **kw)), "min_new_tokens": p["max_new_tokens"]},
    )
    slow = engine.model.register_forward_pre_hook(lambda module, args: time.sleep(0.03))
    try:
        page.click("text=Settings")
        slider = page.locator("input[type=number]").last  # max new tokens
        slider.fill("1024")
        slider.press("Enter")
        ask(page, "How do I choose the right loss function for my project?")
        # The answer is streaming (its bubble has text), then Stop.
        page.wait_for_function(
            "[...document.querySelectorAll('[data-testid=\"bot\"]')].pop()?.innerText.trim().length > 0",
            timeout=60_000,
        )
        page.click("#stop")
        status = wait_done(page)
    finally:
        slow.remove()
    assert "stopped" in status


def test_feedback_and_markdown_export(page, app_url):
    from assistant.store import ConversationStore, open_database

    _, assistant = app_url
    store = ConversationStore(open_database(assistant.settings))
    before = len(store.feedback(None))
    ask(page, "How can I keep up with the latest developments in deep learning?")
    wait_done(page)
    page.fill("#feedback-comment textarea", "found it at once")
    page.get_by_role("button", name="Like").last.click()
    deadline = time.time() + 10
    while time.time() < deadline and len(store.feedback(None)) == before:
        time.sleep(0.1)
    row = store.feedback(None)[-1]  # in the database now, read back by `assistant feedback export`
    assert row["liked"] is True and row["comment"] == "found it at once"
    assert row["question"] == "How can I keep up with the latest developments in deep learning?"
    assert row["answer"] and row["sources"][0]["title"].startswith("How can I keep up")
    page.click("#export")
    # Served by the app although data_dir lies outside the working directory and the temp dir.
    link = page.wait_for_selector("#exported a", timeout=15_000).get_attribute("href")
    with urllib.request.urlopen(urllib.parse.urljoin(app_url[0], link), timeout=10) as r:
        exported = r.read().decode("utf-8")
    assert "**You:** How can I keep up with the latest developments in deep learning?" in exported
    assert "[1] How can I keep up" in exported


def test_upload_a_document_then_find_it(page, tmp_path):
    doc = tmp_path / "zorblax-notes.md"
    doc.write_text(
        "# Team notes\n\n### What is zorblax normalization?\n\nZorblax normalization rescales each "
        "activation by the running median of its layer, which stabilises training of very deep nets.\n\n"
        "### When should I avoid zorblax normalization?\n\nAvoid it with batch sizes below four.\n"
    )
    page.click("button[role=tab]:has-text('Documents')")
    page.set_input_files("#upload input[type=file]", str(doc))
    page.wait_for_function(
        "document.querySelector('#upload-status').innerText.includes('units indexed')", timeout=60_000
    )
    assert "zorblax-notes.md" in page.inner_text("#documents")
    page.click("button[role=tab]:has-text('Chat')")
    ask(page, "what is zorblax normalization?")
    wait_done(page)
    assert "zorblax-notes.md" in page.inner_text("#sources")
    # …and remove it again: its units leave the index.
    page.click("button[role=tab]:has-text('Documents')")
    page.click("#remove-pick input")
    page.click("li:has-text('zorblax-notes.md')")
    page.click("#remove")
    page.wait_for_function(
        "document.querySelector('#upload-status').innerText.includes('Removed')", timeout=30_000
    )
    assert "zorblax-notes.md" not in page.inner_text("#documents")


def test_a_bad_upload_shows_an_error_and_changes_nothing(page, tmp_path, app_url):
    _, assistant = app_url
    before = assistant.store.count()
    bad = tmp_path / "weights.txt"
    bad.write_bytes(b"\x00\x01\x02" * 1000)
    page.click("button[role=tab]:has-text('Documents')")
    page.set_input_files("#upload input[type=file]", str(bad))
    page.wait_for_function(
        "document.querySelector('#upload-status').innerText.includes('❌')", timeout=60_000
    )
    status = page.inner_text("#upload-status")
    assert "weights.txt" in status and "binary" in status
    assert assistant.store.count() == before
    assert "weights.txt" not in page.inner_text("#documents")
    assert not (assistant.settings.uploads_dir / "weights.txt").exists()


@pytest.mark.slow
def test_screenshot_of_a_real_conversation_with_the_packaged_model(browser, tmp_path_factory, embedder):
    """Drives the app with the packaged Qwen model and commits what a user sees: docs/screenshot.png."""
    from assistant.core import Assistant
    from assistant.llm.engine import LLMEngine
    from assistant.llm.models import PACKAGED
    from assistant.web.app import build_app, launch

    # The engine reads the app's own data dir, so the one-time conversion is shared with `make run`.
    engine = LLMEngine(Settings(llm_model=PACKAGED, llm_max_new_tokens=160))
    s = Settings(data_dir=tmp_path_factory.mktemp("shot"), llm_max_new_tokens=160)
    assistant = Assistant(s, embedder=embedder, llm=engine)
    assistant.ingest()
    demo = build_app(assistant)
    port = _free_port()
    launch(demo, "127.0.0.1", port, block=False)
    try:
        pg = browser.new_page(viewport={"width": 1400, "height": 1050})
        pg.goto(f"http://127.0.0.1:{port}")
        pg.wait_for_selector("#question textarea")
        ask(pg, "My GPU runs out of memory during training. What can I do?")
        wait_done(pg, timeout=300)
        assert "My model training takes too much RAM" in pg.inner_text("#sources")
        pg.click("#details-accordion button, #details-accordion .label-wrap")
        time.sleep(0.5)
        out = PROJECT_DIR / "docs" / "screenshot.png"
        pg.screenshot(path=str(out), full_page=True)
        assert out.stat().st_size > 20_000
    finally:
        demo.close()
