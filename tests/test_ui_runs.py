"""An attached training run in a real browser (Playwright driving Debian's Chromium) against the real
app with the tiny model: upload a log in the message box, see its findings and curves, reload, export;
paste a log; a bad file says why and changes nothing. And a raw HTTP client that names a server path
in its payload reads nothing."""

from __future__ import annotations

import base64
import urllib.parse
import urllib.request
from pathlib import Path

import httpx
from gradio.utils import get_upload_folder

from assistant.runs import detect, parse_run
from tests.test_ui import app_url, ask, browser, page, wait_done  # noqa: F401 (fixtures)

LOGS = Path(__file__).parent / "goldsets" / "runs" / "logs"
CURVES = "#chatbot img[src^='data:image/png;base64,']"


def attach(pg, path: Path, words: str = "") -> None:
    """Upload a file in the message box, type the words, send; returns when the answer is complete."""
    before = pg.locator('[data-testid="bot"]').count()
    pg.set_input_files("#question input[type=file]", str(path))
    pg.wait_for_selector("#question .thumbnail-item", timeout=30_000)  # uploaded
    if words:
        pg.fill("#question textarea", words)
    pg.click("#send")
    pg.wait_for_function(
        f"document.querySelectorAll('[data-testid=\"bot\"]').length > {before}", timeout=60_000
    )


def test_upload_a_log_see_findings_and_curves_reload_and_export(page, app_url):  # noqa: F811
    attach(page, LOGS / "overfit_blobs.keras.csv", "Why does my validation loss go up?")
    page.wait_for_selector(CURVES, timeout=60_000)  # shown with the findings, above the answer
    assert "✓" in wait_done(page)
    bubble = page.locator('[data-testid="bot"]').last.inner_text()
    assert "Your run: overfit_blobs.keras.csv" in bubble and "overfitting" in bubble
    turn = detect(parse_run(LOGS / "overfit_blobs.keras.csv"))[0].details["turn"]
    assert f"at {turn}" in bubble  # the finding's evidence, with its epoch
    img = page.locator(CURVES).last
    assert img.evaluate("i => i.complete && i.naturalWidth") > 300  # a real picture, decoded
    user = page.locator('[data-testid="user"]').last.inner_text()
    assert "Why does my validation loss go up?" in user and "overfit_blobs.keras.csv" in user
    assert "overfitting" in page.inner_text("#sources").lower()  # the documents about the symptom
    # Reload: the conversation comes back from the database with its findings and picture.
    page.wait_for_function("new URL(location.href).searchParams.get('c')")
    page.reload()
    page.wait_for_selector(CURVES, timeout=30_000)
    assert "overfitting" in page.locator('[data-testid="bot"]').last.inner_text()
    # Export: one self-contained Markdown file, the picture inline.
    page.click("#export")
    link = page.wait_for_selector("#exported a", timeout=15_000).get_attribute("href")
    with urllib.request.urlopen(urllib.parse.urljoin(app_url[0], link), timeout=10) as r:
        md = r.read().decode("utf-8")
    assert "**You:** Why does my validation loss go up?" in md and "- **overfitting**:" in md
    png = md.split("](data:image/png;base64,", 1)[1].split(")", 1)[0]
    assert base64.b64decode(png).startswith(b"\x89PNG")


def test_a_pasted_log_is_diagnosed_and_a_quoted_line_stays_a_question(page):  # noqa: F811
    log = (LOGS / "healthy_blobs_adam.console.log").read_text()
    ask(page, f"Here is my run:\n{log}\nIs it fine?")
    page.wait_for_selector(CURVES, timeout=60_000)
    wait_done(page)
    assert "healthy" in page.locator('[data-testid="bot"]').last.inner_text()
    ask(page, "My loss is stuck:\nloss: 0.4\nWhat should I do?")
    wait_done(page)
    assert page.locator(CURVES).count() == 1  # no second picture: that was a question


def test_a_bad_file_says_why_and_changes_nothing(page, tmp_path):  # noqa: F811
    notes = tmp_path / "notes.csv"
    notes.write_text("name,age,city\nann,31,Oslo\nbob,45,Rome\n")
    page.set_input_files("#question input[type=file]", str(notes))
    page.wait_for_selector("#question .thumbnail-item", timeout=30_000)
    page.click("#send")
    page.wait_for_function("document.body.innerText.includes('holds no training metric')", timeout=30_000)
    assert (
        page.locator('[data-testid="bot"]').count() == 0 and page.locator('[data-testid="user"]').count() == 0
    )
    assert page.locator("#question .thumbnail-item").count() == 1  # still there, to fix or remove
    page.click("#question .delete-button")
    ask(page, "How do I choose a learning rate?")  # the app goes on serving
    status = wait_done(page)
    assert "✓" in status or "🚫" in status


def test_a_client_naming_a_server_path_reads_nothing(app_url):  # noqa: F811
    """The page's own queue protocol, spoken by hand: the chat's event with a FileData that names
    /etc/passwd or the database instead of an upload."""
    url, assistant = app_url
    config = httpx.get(f"{url}/config", timeout=10).json()
    box = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "question")
    event = next(
        d for d in config["dependencies"] if d["inputs"][:1] == [box] and [box, "submit"] in d["targets"]
    )
    from assistant.store import Accounts, ConversationStore, open_database

    db = open_database(assistant.settings)
    store, me = ConversationStore(db), Accounts(db, assistant.settings).local_user()
    for path in ("/etc/passwd", str(assistant.settings.database_file)):
        before = store.list(me)
        session = f"attacker-{abs(hash(path))}"
        message = {
            "text": "",
            "files": [{"path": path, "orig_name": "x.csv", "meta": {"_type": "gradio.FileData"}}],
        }
        data = [message, [], None, 2, 0.0, 64, "", {}]  # box, chat, turns, k, temperature, tokens, id, card
        assert len(data) == len(event["inputs"])
        body = {
            "data": data,
            "fn_index": event["id"],
            "trigger_id": box,
            "session_hash": session,
            "event_data": None,
        }
        joined = httpx.post(f"{url}/gradio_api/queue/join", json=body, timeout=10)
        stream = ""
        if joined.status_code == 200:
            with httpx.stream(
                "GET", f"{url}/gradio_api/queue/data", params={"session_hash": session}, timeout=60
            ) as r:
                for line in r.iter_lines():
                    stream += line + "\n"
                    if "process_completed" in line:
                        break
        assert joined.status_code == 200 and "process_completed" in stream
        # Gradio's own check refuses it (its message goes to the server log: show_error is off)
        assert '"success":false' in stream
        assert "root:" not in stream and "Not attached" not in stream  # never read, not even refused
        copied = [p for p in Path(get_upload_folder()).rglob("*") if p.name in {"passwd", "assistant.db"}]
        assert copied == []  # nor copied where the server could serve it
        assert store.list(me) == before  # nothing saved
    db.dispose()
