"""The attacker's review, as a script against a live server (accounts on: an admin and two users),
with raw HTTP, a second site on another port of the same host, and a real browser. Every test here
failed against the app before it was hardened (issue 18); each names the finding it holds shut.

The server is the real app on a loopback port over a real SQLite database and index, with the tiny
model. The "attacker's site" is a plain HTTP server on another port: browsers count it as the same
*site* as the app (ports do not matter to SameSite), which is exactly why cookies alone do not stop it.
"""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from assistant.settings import Settings
from assistant.store import AuthError
from assistant.web.auth import COOKIE, DEVICE_COOKIE, web_context
from tests.test_ui import _free_port, browser  # noqa: F401 (browser is a fixture)


class CountingHasher(PasswordHasher):
    """argon2 as shipped, counting verifications (each is 64 MB and tens of ms of CPU)."""

    calls = 0

    def verify(self, hash, password):  # noqa: A002 - argon2's own parameter name
        CountingHasher.calls += 1
        return super().verify(hash, password)


def start_app(settings, assistant):
    from assistant.web.app import build_app, launch

    web = web_context(settings, "127.0.0.1")
    web.accounts.hasher = CountingHasher()
    app = build_app(assistant, web)
    port = _free_port()
    launch(app, "127.0.0.1", port, block=False)
    return app, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder, tiny_engine):
    from assistant.core import Assistant
    from assistant.store import Accounts, open_database

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("attacks"),
        llm_max_new_tokens=16,
        auth="on",
        login_free_failures=3,
        login_client_free_failures=6,
        login_account_free_failures=8,
        login_delay_s=60,
        message_max_kb=64,
    )
    assistant = Assistant(settings, embedder=embedder, llm=tiny_engine)
    assistant.ingest()
    db = open_database(settings)
    accounts = Accounts(db, settings)
    for name, admin in (("root", True), ("alice", False), ("bob", False), ("mallory", False)):
        accounts.add(name, f"{name}-pw", admin=admin)
    keys = {"alice": accounts.new_api_key("alice")}
    db.dispose()
    app, url = start_app(settings, assistant)
    yield {"url": url, "app": app, "keys": keys, "settings": settings, "assistant": assistant}
    app.close()
    app.web.db.dispose()


@pytest.fixture(autouse=True)
def forget_failures(server):
    """Each attack starts with no failed logins on record (the throttle is in the database and would
    otherwise carry one test's guesses into the next): no test depends on another's order."""
    yield
    from sqlalchemy import delete

    from assistant.store.models import LoginFailure

    with server["app"].web.db.session() as s:
        s.execute(delete(LoginFailure))


def session(url: str, name: str) -> httpx.Client:
    """An HTTP client logged in as `name` (its cookies: the session and the device cookie)."""
    c = httpx.Client(base_url=url, timeout=30)
    r = c.post("/login", data={"username": name, "password": f"{name}-pw", "next": "/"})
    assert r.status_code == 303, (name, r.status_code, r.text[:200])
    return c


@pytest.fixture(scope="module")
def evil(server):
    """The attacker's site on another port: pages that try to read, post and log out through the
    visitor's browser, and a counter of what the browser was made to fetch from it."""
    target = server["url"]
    hits: list[str] = []
    pages = {
        "/read": f"""<script>
            fetch("{target}/config", {{credentials: "include"}})
              .then(r => r.text()).then(t => {{ document.title = "READ " + t.length; }})
              .catch(e => {{ document.title = "BLOCKED"; }});
            </script>""",
        "/login-csrf": f"""<form id=f method=post action="{target}/login">
            <input name=username value=mallory><input name=password value=mallory-pw>
            <input name=next value="/"></form><script>f.submit()</script>""",
        "/logout-csrf": f"""<img src="{target}/logout"><form id=f method=post action="{target}/logout"></form>
            <script>setTimeout(() => f.submit(), 300)</script>""",
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            hits.append(self.path)
            body = pages.get(self.path.split("?")[0], "").encode()
            self.send_response(200 if body else 204)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", _free_port()), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{httpd.server_address[1]}", "hits": hits}
    httpd.shutdown()


# -- 3. cross-origin reads with credentials, and 7. login/logout CSRF --------------------------------


def test_another_origin_cannot_read_or_act_with_a_users_cookies(server, evil):
    url = server["url"]
    alice = session(url, "alice")
    own = alice.get("/config", headers={"Origin": url})
    assert own.status_code == 200
    for origin in (evil["url"], "http://evil.example", "null"):
        r = alice.get("/config", headers={"Origin": origin})
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers, origin
        pre = alice.options(
            "/gradio_api/queue/join",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )
        assert (
            "access-control-allow-origin" not in pre.headers
            and "access-control-allow-credentials" not in (pre.headers)
        )
        join = alice.post("/gradio_api/queue/join", json={"session_hash": "x"}, headers={"Origin": origin})
        assert join.status_code == 403
    # On a host name other than localhost Gradio used to reflect every Origin: still refused.
    r = alice.get("/config", headers={"Origin": "http://evil.example", "Host": "assistant.internal"})
    assert r.status_code == 403
    # A browser's own marking of a cross-site request without an Origin (an <img>, a <script>) too;
    # a plain link from elsewhere to the page still opens it.
    assert (
        alice.get("/config", headers={"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"}).status_code
        == 403
    )
    assert (
        alice.get("/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}).status_code
        == 200
    )


def test_login_and_logout_cannot_be_forced_by_another_site(server, evil):
    url = server["url"]
    alice = session(url, "alice")
    forced = httpx.post(
        f"{url}/login",
        data={"username": "mallory", "password": "mallory-pw", "next": "/"},
        headers={"Origin": evil["url"]},
    )
    assert forced.status_code == 403 and COOKIE not in forced.cookies
    assert alice.get("/logout").status_code == 405  # a GET (an <img>) no longer logs anyone out
    assert alice.post("/logout", headers={"Origin": evil["url"]}).status_code == 403
    assert alice.get("/config").status_code == 200  # still logged in
    cookie = next(c for c in alice.cookies.jar if c.name == COOKIE)
    assert cookie.get_nonstandard_attr("SameSite", "").lower() == "strict" and cookie.has_nonstandard_attr(
        "HttpOnly"
    )
    assert not cookie.secure  # plain http here (Secure behind TLS: the last test of this file)


def test_in_a_real_browser_the_other_site_reads_nothing_and_changes_no_login(server, evil, browser):  # noqa: F811
    url = server["url"]
    ctx = browser.new_context()
    pg = ctx.new_page()
    pg.goto(url)
    pg.fill("#username", "alice")
    pg.fill("#password", "alice-pw")
    pg.click("#login")
    pg.wait_for_selector("#question textarea")
    attacker = ctx.new_page()
    attacker.goto(f"{evil['url']}/read")
    attacker.wait_for_function("document.title.length > 0", timeout=15_000)
    assert attacker.title() == "BLOCKED"
    attacker.goto(f"{evil['url']}/login-csrf")
    attacker.wait_for_timeout(1000)
    attacker.goto(f"{evil['url']}/logout-csrf")
    attacker.wait_for_timeout(1500)
    pg.reload()
    pg.wait_for_function("document.querySelector('#who')?.innerText.includes('Signed in as alice')")
    ctx.close()


# -- 4. the login throttle behind a proxy, and a lockout by strangers ---------------------------------


def test_a_forged_forwarded_for_header_buys_no_extra_guesses(server):
    url = server["url"]
    codes = []
    for i in range(30):
        r = httpx.post(
            f"{url}/login",
            data={"username": "bob", "password": f"guess-{i}", "next": "/"},
            headers={"X-Forwarded-For": f"10.9.{i}.{i}"},
        )
        codes.append(r.status_code)
    assert codes.count(401) <= 6 and codes[-1] == 429, codes  # the client's allowance, then refused


def test_strangers_failing_on_the_admin_do_not_lock_the_admin_out(server):
    url = server["url"]
    admin = session(url, "root")  # the admin's browser: it has a device cookie now
    assert any(c.name == DEVICE_COOKIE for c in admin.cookies.jar)
    admin.post("/logout")
    app = server["app"]
    for i in range(12):  # strangers from many addresses, each under its own limits
        with contextlib.suppress(AuthError):  # Throttled too, once the account's allowance is gone
            app.web.accounts.authenticate_password("root", f"guess{i}", client=f"10.77.0.{i}")
    stranger = httpx.post(f"{url}/login", data={"username": "root", "password": "root-pw"})
    assert stranger.status_code == 429  # an unknown browser waits, even with the right password
    back = admin.post("/login", data={"username": "root", "password": "root-pw", "next": "/"})
    assert back.status_code == 303  # the admin's own browser gets in


# -- 5. unknown API keys ------------------------------------------------------------------------------


def test_unknown_api_keys_cost_no_hash_and_are_throttled(server):
    url = server["url"]
    before = CountingHasher.calls
    codes = [
        httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer sk-{i:016x}-{'A' * 43}"}).status_code
        for i in range(40)
    ]
    assert CountingHasher.calls == before  # no argon2 for a key id that does not exist
    assert set(codes) <= {401, 429} and codes[-1] == 429
    good = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {server['keys']['alice']}"})
    assert good.status_code == 429  # this client is slowed down now, whatever it sends
    assert good.headers["retry-after"]


# -- 2. message size, 12. internal errors reach no client, 17. max_tokens -------------------------------


def test_a_huge_message_is_refused_at_the_door_and_the_app_keeps_serving(server):
    url = server["url"]
    alice = session(url, "alice")
    huge = "why " * (3 * 2**20)  # 12 MB
    r = alice.post("/gradio_api/call/ask", json={"data": [huge, "[]"]})
    assert r.status_code == 413
    r = alice.post("/gradio_api/queue/join", json={"data": [huge], "fn_index": 0, "session_hash": "h1"})
    assert r.status_code == 413
    key = server["keys"]["alice"]
    big = httpx.post(
        f"{url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"messages": [{"role": "user", "content": "x" * 200_000}]},
        timeout=30,
    )
    assert big.status_code == 400 and "message_max_kb" in big.json()["error"]["message"]
    assert alice.get("/config").status_code == 200


def test_bad_input_to_the_apis_gets_a_clear_4xx_never_a_trace(server):
    from gradio_client import Client

    url = server["url"]
    key = server["keys"]["alice"]
    auth = {"Authorization": f"Bearer {key}"}
    deep = '{"messages": ' + "[" * 5000 + "]" * 5000 + "}"
    r = httpx.post(
        f"{url}/v1/chat/completions", headers={**auth, "Content-Type": "application/json"}, content=deep
    )
    assert r.status_code == 400 and "nested" in r.json()["error"]["message"]
    surrogate = '{"messages": [{"role": "user", "content": "loss \\ud800 nan?"}], "max_tokens": 8}'
    r = httpx.post(
        f"{url}/v1/chat/completions",
        headers={**auth, "Content-Type": "application/json"},
        content=surrogate,
        timeout=60,
    )
    assert r.status_code == 200 and "choices" in r.json()
    r = httpx.post(
        f"{url}/v1/chat/completions",
        headers=auth,
        json={"messages": [{"role": "user", "content": "lr?"}], "max_tokens": 50_000},
    )
    assert r.status_code == 400 and "max_new_tokens_limit" in r.json()["error"]["message"]
    alice = session(url, "alice")
    cookies = {c.name: c.value for c in alice.cookies.jar}
    client = Client(url, verbose=False, httpx_kwargs={"cookies": cookies}, analytics_enabled=False)
    with pytest.raises(Exception) as bad:
        client.predict("what is dropout?", '["just a string"]', api_name="/ask")
    assert "history" in str(bad.value) and "attribute" not in str(bad.value)


def test_a_database_failure_is_a_plain_message_with_a_request_id(server, monkeypatch):
    from sqlalchemy.exc import OperationalError

    url = server["url"]
    app = server["app"]

    def full(*a, **k):
        raise OperationalError("INSERT INTO login_sessions", {}, Exception("database or disk is full"))

    monkeypatch.setattr(app.web.accounts, "create_session", full)
    r = httpx.post(f"{url}/login", data={"username": "bob", "password": "bob-pw"})
    assert r.status_code == 503 and "request" in r.text and "disk is full" not in r.text
    assert r.headers["x-request-id"] in r.text


# -- 8. tab state, 9. files, 10. the documents list, 11. the schema -----------------------------------


def test_another_users_tab_session_and_files_are_out_of_reach(server):
    url = server["url"]
    alice, bob = session(url, "alice"), session(url, "bob")
    with alice.stream("GET", "/gradio_api/queue/data", params={"session_hash": "alice-tab-1"}) as r:
        assert r.status_code == 200  # alice's tab: her own event stream
    for call in (
        lambda c: c.get("/gradio_api/queue/data", params={"session_hash": "alice-tab-1"}),
        lambda c: c.post(
            "/gradio_api/queue/join", json={"data": [], "fn_index": 0, "session_hash": "alice-tab-1"}
        ),
        lambda c: c.post(
            "/gradio_api/cancel", json={"session_hash": "alice-tab-1", "fn_index": 0, "event_id": "e"}
        ),
        lambda c: c.get("/gradio_api/heartbeat/alice-tab-1"),
    ):
        assert call(bob).status_code == 403
        assert call(httpx.Client(base_url=url)).status_code in (401, 403)  # no login: nothing either
    up = alice.post("/gradio_api/upload", files={"files": ("run.csv", b"epoch,loss\n1,0.5\n2,0.4\n")})
    assert up.status_code == 200
    path = up.json()[0]
    assert alice.get(f"/gradio_api/file={path}").status_code == 200
    assert bob.get(f"/gradio_api/file={path}").status_code == 404
    assert bob.get(f"/gradio_api/file/{path.lstrip('/')}").status_code in (403, 404)
    stray = Path(path).parent / "not-registered.txt"
    stray.write_text("secret")
    assert alice.get(f"/gradio_api/file={stray}").status_code == 404


def test_a_non_admins_page_holds_no_document_list_or_server_path(server):
    url = server["url"]
    bob = session(url, "bob")
    config = bob.get("/config").text
    data_dir = str(server["settings"].data_dir)
    assert data_dir not in config and "deep-learning-projects-faq.md" not in config
    root = session(url, "root")
    assert data_dir not in root.get("/config").text  # even an admin's page carries ids, not paths


def test_the_schema_routes_do_not_answer(server):
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert httpx.get(server["url"] + path).status_code == 404, path


# -- 15. what the page renders, 18. Secure behind TLS ---------------------------------------------------


def test_html_and_images_in_a_message_are_shown_as_text_and_fetch_nothing(server, evil, browser):  # noqa: F811
    url = server["url"]
    ctx = browser.new_context()
    pg = ctx.new_page()
    pg.goto(url)
    pg.fill("#username", "alice")
    pg.fill("#password", "alice-pw")
    pg.click("#login")
    pg.wait_for_selector("#question textarea")
    leak = f"{evil['url']}/leak"
    hostile = f'<img src="{leak}-img"> ![x]({leak}-md) <form action="{leak}-form"><button>go</button></form>'
    pg.fill("#question textarea", hostile)
    pg.click("#send")
    pg.wait_for_function(
        "(document.querySelector('#chatbot')?.innerText || '').includes('<img src')", timeout=60_000
    )
    pg.wait_for_timeout(1000)
    assert pg.locator("#chatbot img[src*='leak'], #chatbot form").count() == 0
    assert not [h for h in evil["hits"] if h.startswith("/leak")]
    csp = httpx.get(url + "/login").headers["content-security-policy"]
    assert "img-src 'self' data: blob:" in csp and "form-action 'self'" in csp
    ctx.close()


def test_the_session_cookie_is_secure_behind_a_trusted_tls_proxy(tmp_path, embedder, tiny_engine):
    from assistant.core import Assistant
    from assistant.store import Accounts, open_database

    settings = Settings(data_dir=tmp_path, auth="on", trusted_proxies=["127.0.0.1"], login_delay_s=60)
    assistant = Assistant(settings, embedder=embedder, llm=tiny_engine)
    db = open_database(settings)
    Accounts(db, settings).add("alice", "alice-pw")
    db.dispose()
    app, url = start_app(settings, assistant)
    try:
        proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        r = httpx.post(f"{url}/login", data={"username": "alice", "password": "alice-pw"}, headers=proxied)
        assert r.status_code == 303
        assert all("Secure" in c for c in r.headers.get_list("set-cookie"))
        # the proxy's X-Forwarded-For is the client: its failures are that client's
        for _ in range(6):
            httpx.post(f"{url}/login", data={"username": "alice", "password": "x"}, headers=proxied)
        assert (
            httpx.post(
                f"{url}/login", data={"username": "alice", "password": "alice-pw"}, headers=proxied
            ).status_code
            == 429
        )
        other = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
        assert (
            httpx.post(
                f"{url}/login", data={"username": "alice", "password": "alice-pw"}, headers=other
            ).status_code
            == 303
        )
    finally:
        app.close()
        app.web.db.dispose()


# -- 14. an upload killed before it was indexed -------------------------------------------------------


@pytest.mark.slow
def test_an_upload_killed_before_indexing_is_indexed_at_the_next_start(tmp_path, make_assistant):
    """The real upload handler in a process killed (SIGKILL) right after the file was stored and the
    index marked: the next start indexes it, and it is listed and removable like any upload."""
    import os
    import signal
    import subprocess
    import sys

    from assistant.knowledge.index import KILL_AT_ENV
    from assistant.settings import PROJECT_DIR

    settings = Settings(data_dir=tmp_path / "data")
    doc = tmp_path / "zorblax.md"
    doc.write_text("# Notes\n\n### What is zorblax?\n\nZorblax rescales activations by their median.\n")
    script = (
        "import os; from assistant.core import Assistant; from assistant.settings import Settings;"
        "from assistant.web.documents_tab import DocumentsTab;"
        f"a = Assistant(Settings(data_dir={str(settings.data_dir)!r})); a.ingest();"
        f"os.environ[{KILL_AT_ENV!r}] = 'marked';"  # killed in the upload's own write, not the corpus's
        f"DocumentsTab(a).upload([{str(doc)!r}])"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=PROJECT_DIR, timeout=300)
    assert proc.returncode == -signal.SIGKILL
    stored = list(settings.uploads_dir.glob("*/zorblax.md"))
    assert len(stored) == 1  # the file is there, the index does not have it
    a = make_assistant(settings)
    assert not [f for f in a.store.files().values() if f["source"] == "zorblax.md"]
    report = a.ingest()  # what `assistant serve` (and `assistant ingest`) does at start
    assert report.repaired == 1 and "zorblax.md" in report.added, report
    assert a.search("what is zorblax", k=1)[0].source == "zorblax.md"


def test_json_logs_are_not_read_whole(tmp_path):
    """6. A 20 MB JSON log took 556 MB; the parse-level memory checks are in test_run_limits.py. Here:
    the same parse through the chat's attachment path, within a bounded multiple of the file."""
    import tracemalloc

    from assistant.web.run_attach import RunAttacher

    state = {"log_history": [{"epoch": i / 100, "step": i, "loss": 1 / (1 + i)} for i in range(60_000)]}
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(state))
    tracemalloc.start()
    try:
        RunAttacher(Settings(data_dir=tmp_path))._attach(path, "", path.name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * path.stat().st_size + 30_000_000, (peak, path.stat().st_size)


def test_model_output_renders_no_html_and_no_image():
    """15. A document can tell the model to write markup; the bubble shows it as text."""
    from assistant.web.render import answer_markdown, bubble_markdown

    hostile = (
        'Use dropout [1]. <img src="http://evil.example/x.png"> ![p](http://evil.example/p.png) '
        '<form action="http://evil.example"><input name=q></form>'
    )
    for shown in (answer_markdown({"answer": hostile, "unsupported": [{"sentence": "Use dropout."}]}),
                  bubble_markdown(None, None, hostile)):  # fmt: skip
        assert "<img" not in shown and "<form" not in shown and "![" not in shown
        assert "&lt;img" in shown


def test_a_direction_override_in_an_attachment_name_is_not_shown():
    """15. `report\\u202egpj.exe` would display as `reportexe.jpg`."""
    from assistant.web.render import question_markdown
    from assistant.web.run_attach import display_name

    assert display_name("report\u202egpj.exe") == "reportgpj.exe"
    run = {"name": "report\u202egpj.exe", "findings": []}
    assert "\u202e" not in question_markdown("why?", run)


def test_an_unexpected_handler_error_is_a_plain_message_with_its_request_id(caplog):
    """12. A raw SQL error used to reach the page."""
    import gradio as gr
    from sqlalchemy.exc import OperationalError

    from assistant.web.errors import guarded

    def failing(text: str):
        raise OperationalError("INSERT INTO messages", {}, Exception("database or disk is full"))

    def streaming(text: str):
        yield "partial"
        raise KeyError("'str' object has no attribute 'get'")

    for fn in (failing, lambda t: list(guarded(streaming)(t))):
        with pytest.raises(gr.Error) as err:
            guarded(fn)("hi") if fn is failing else fn("hi")
        message = str(err.value)
        assert "request" in message and "disk is full" not in message and "attribute" not in message
    assert "disk is full" in caplog.text  # the details are in the server log
