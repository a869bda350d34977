"""Logins and saved conversations in a real browser (Playwright driving Debian's Chromium) against the
real app with accounts in a SQLite file: log in, ask, reload, restart the server, another user sees
nothing; the API and Gradio's own routes on the same port refuse strangers. Serving refuses to start
off loopback without an account."""

from __future__ import annotations

import re

import httpx
import pytest

from assistant.settings import Settings
from assistant.store import open_database
from assistant.web.auth import web_context
from tests.test_ui import _free_port, ask, browser, wait_done  # noqa: F401 (browser is a fixture)

QUESTION = "How can I ensure the reproducibility of my deep learning project?"


@pytest.fixture(scope="module")
def site(tmp_path_factory, embedder, tiny_engine):
    """start(): a new app (and a new database handle) over the same data, as after a restart;
    `url` is the running one's."""
    from assistant.core import Assistant
    from assistant.store import Accounts
    from assistant.web.app import build_app, launch

    settings = Settings(data_dir=tmp_path_factory.mktemp("accounts-ui"), llm_max_new_tokens=48, auth="on")
    assistant = Assistant(settings, embedder=embedder, llm=tiny_engine)
    assistant.ingest()
    db = open_database(settings)
    accounts = Accounts(db, settings)
    accounts.add("alice", "alice-pw")
    accounts.add("bob", "bob-pw")
    key = accounts.new_api_key("alice")
    db.dispose()
    running = []
    site = {"key": key}

    def start() -> str:
        for app in running:
            app.close()
            app.web.db.dispose()
        running.clear()
        app = build_app(assistant, web_context(settings, "127.0.0.1"))
        port = _free_port()
        launch(app, "127.0.0.1", port, block=False)
        running.append(app)
        site["url"] = f"http://127.0.0.1:{port}"
        return site["url"]

    site["start"] = start
    start()
    yield site
    for app in running:
        app.close()
        app.web.db.dispose()


def login(browser, url: str, name: str, password: str, path: str = "/"):  # noqa: F811
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.goto(url + path)
    assert "/login" in pg.url  # the page sends a stranger to the login form, then back to `path`
    pg.fill("#username", name)
    pg.fill("#password", password)
    pg.click("#login")
    pg.wait_for_url(url + path, wait_until="commit")  # back where it was going (then the page loads)
    pg.wait_for_selector("#question textarea")
    return ctx, pg


def test_log_in_ask_reload_restart_and_another_user_sees_nothing(browser, site):  # noqa: F811
    url = site["url"]
    # A wrong password: the form again, with one message whatever was wrong.
    ctx = browser.new_context()
    pg = ctx.new_page()
    pg.goto(url)
    pg.fill("#username", "alice")
    pg.fill("#password", "guess")
    pg.click("#login")
    assert "wrong name or password" in pg.inner_text("body") and "/login" in pg.url
    ctx.close()

    ctx, pg = login(browser, url, "alice", "alice-pw")
    pg.wait_for_function("document.querySelector('#who')?.innerText.includes('Signed in as alice')")
    ask(pg, QUESTION)
    assert "✓" in wait_done(pg)
    pg.wait_for_function("new URL(location.href).searchParams.get('c')")
    conv_id = re.search(r"[?&]c=([\w-]+)", pg.url)[1]
    pg.wait_for_function(
        "document.querySelector('#conversations')?.innerText.includes('How can I ensure')", timeout=15_000
    )
    # Reload: the conversation and its sources panel come back.
    pg.reload()
    pg.wait_for_function(
        "document.querySelector('#chatbot')?.innerText.includes('How can I ensure')", timeout=30_000
    )
    assert QUESTION in pg.inner_text("#sources")
    # Restart the server over the same database: the login (a session in the database) and the
    # conversation are both still there.
    url = site["start"]()
    pg.goto(url)
    pg.wait_for_selector("#conversations")
    pg.wait_for_function(
        "document.querySelector('#conversations')?.innerText.includes('How can I ensure')", timeout=30_000
    )
    pg.click("#conversations label:has-text('How can I ensure')")
    pg.wait_for_function(
        "document.querySelector('#chatbot')?.innerText.includes('How can I ensure')", timeout=30_000
    )
    assert QUESTION in pg.inner_text("#sources") and conv_id in pg.url
    # Bob, even with Alice's conversation in his address bar, gets a new chat and an empty list.
    ctx_b, pb = login(browser, url, "bob", "bob-pw", f"/?c={conv_id}")
    pb.wait_for_timeout(1500)  # the load event has run
    for where in ("#chatbot", "#conversations", "#sources"):
        assert "How can I ensure" not in pb.inner_text(where)
    assert pb.locator("button[role=tab]:has-text('Documents')").count() == 0  # admins only
    # Log out (a POST from the page's button): back to the login form, and the page no longer opens.
    pb.click("#logout")
    pb.wait_for_url("**/login**")
    assert "/login" in pb.url
    pb.goto(url)
    assert "/login" in pb.url
    ctx_b.close()
    ctx.close()


def test_the_api_and_gradios_routes_on_the_same_port_refuse_strangers(site):
    url = site["url"]
    wrong = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer sk-0123456789abcdef-" + "A" * 40})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    right = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {site['key']}"})
    assert right.status_code == 200 and right.json()["data"][0]["id"] == "dl-assistant"
    for path in ("/config", "/gradio_api/info", "/gradio_api/queue/data?session_hash=x"):
        assert httpx.get(url + path).status_code == 401, path
    forged = httpx.get(f"{url}/config", cookies={"assistant_session": "forged"})
    assert forged.status_code == 401


def test_serving_off_loopback_needs_an_account_or_an_explicit_no_auth(tmp_path, monkeypatch, embedder):
    from typer.testing import CliRunner

    from assistant.cli import app as cli
    from assistant.core import Assistant
    from assistant.web.app import OPEN_ACCESS_BANNER, build_app

    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "assistant users add NAME --admin" in result.output
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(RuntimeError, match="no account yet"):
        web_context(settings, "0.0.0.0")
    web = web_context(settings, "0.0.0.0", no_auth=True)
    assert not web.auth and web.open_access
    app = build_app(Assistant(settings, embedder=embedder), web)
    assert OPEN_ACCESS_BANNER in str(app.demo.config)
    loopback = web_context(settings, "127.0.0.1")
    assert not loopback.auth and not loopback.open_access  # today's experience: no login
    web.db.dispose()
    loopback.db.dispose()
