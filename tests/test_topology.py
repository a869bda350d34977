"""The team topology of README's "Serving several users", run for real on loopback: PostgreSQL
(tests/pg_server.py), `chroma run`, `transformers serve` with the tiny test model, two app replicas
(`assistant serve`, each its own data directory, one shared uploads folder) and Debian's nginx in
front, configured from the template compose uses (deploy/nginx.conf.template). Every part is its own
process; the tests talk to them over HTTP only, as a browser, an API client or an MCP client would
(the processes and clients: tests/topology_helpers.py).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pg_server import PostgresServer, postgres_bin
from test_remote import start_serve
from topology_helpers import NOTE, PASSWORD, Page, Topology, documents, mcp_read, mcp_search, nginx_bin

from assistant.settings import PROJECT_DIR
from assistant.web.auth import COOKIE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Topology]:
    bindir, nginx = postgres_bin(), nginx_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (`make postgres`): the topology test is SKIPPED")
    if nginx is None:
        pytest.skip(
            "nginx is not installed (`make nginx`, or apt-get install nginx): the topology test is SKIPPED"
        )
    root = tmp_path_factory.mktemp("topology")
    root.chmod(0o755)
    top = Topology(root, tiny_model_dir)
    try:
        top.pg = PostgresServer(bindir)
        top.pg.start()
        database = top.pg.new_database()
        chroma = top.start_chroma()
        top.serve, llm = start_serve(tiny_model_dir)
        top.env = {
            "ASSISTANT_DATABASE_URL": database,
            "ASSISTANT_CHROMA_URL": chroma,
            "ASSISTANT_LLM_URL": llm,
            "ASSISTANT_LLM_REMOTE_MODEL": str(tiny_model_dir),
            "ASSISTANT_SHARED_UPLOADS_DIR": str(root / "shared-uploads"),
            "ASSISTANT_CORPUS_PATHS": json.dumps([str(PROJECT_DIR / "corpus")]),
            "ASSISTANT_LLM_MAX_NEW_TOKENS": "24",
            "ASSISTANT_LOGIN_FREE_FAILURES": "3",
            "ASSISTANT_LOGIN_DELAY_S": "900",  # a throttled attempt stays refused for the whole test
            "ASSISTANT_TRUSTED_PROXIES": '["127.0.0.1"]',  # nginx, as in deploy/compose.yaml
        }
        # the first admin and a user, made with the CLI against the shared database (from A's host)
        top.cli("a", "users", "add", "root", "--admin", stdin=PASSWORD["root"] + "\n")
        top.cli("a", "users", "add", "alice", stdin=PASSWORD["alice"] + "\n")
        top.keys["root"] = top.cli("a", "users", "key", "root").strip().splitlines()[-1]
        top.start_replica("a")  # A indexes the corpus into the shared Chroma
        top.start_replica("b")  # B finds it indexed already: the replicas own the documents together
        top.start_nginx(nginx)
        yield top
    finally:
        top.stop()


WHERE = ("a", "b", "nginx")


# -- accounts ------------------------------------------------------------------------------------


def test_an_admin_made_on_one_host_logs_in_anywhere_and_a_session_and_key_work_on_every_replica(topology):
    cookies = topology.session("b", "root")  # made by the CLI on A's host, logged in through B
    assert COOKIE in cookies
    for where in WHERE:
        url = topology.urls[where]
        page = httpx.get(f"{url}/", cookies=cookies, follow_redirects=False, timeout=60)
        assert page.status_code == 200, (where, page.status_code)
        stranger = httpx.get(f"{url}/", follow_redirects=False, timeout=60)
        assert stranger.status_code in (302, 303, 307) and "/login" in stranger.headers["location"], where
        key = {"Authorization": f"Bearer {topology.keys['root']}"}
        models = httpx.get(f"{url}/v1/models", headers=key, timeout=60)
        assert models.status_code == 200 and models.json()["data"], where
    # logged out through nginx: the session ends on every replica (it lives in the database)
    out = httpx.post(f"{topology.urls['nginx']}/logout", cookies=cookies, follow_redirects=False, timeout=60)
    assert out.status_code in (302, 303)
    for where in WHERE:
        page = httpx.get(f"{topology.urls[where]}/", cookies=cookies, follow_redirects=False, timeout=60)
        assert page.status_code != 200, where


def test_failed_logins_are_counted_across_replicas(topology):
    """login_free_failures=3: four wrong passwords spread over A, B and nginx start the delay, so the
    next attempt, anywhere, is refused even with the right password (counted per process, neither
    replica would have seen more than two)."""
    codes = [topology.login(w, "alice", "wrong").status_code for w in ("a", "b", "a", "nginx")]
    assert codes == [401, 401, 401, 401]  # three free failures, and the fourth starts the delay
    assert topology.login("nginx", "alice").status_code == 429
    assert topology.login("b", "alice").status_code == 429
    assert topology.login("a", "root").status_code == 303, "another account is not held by alice's count"


# -- the replicas' shared ownership, in one process (no servers needed) ------------------------------


def test_replicas_sharing_an_uploads_folder_own_the_same_documents(tmp_path, make_assistant):
    """Two data directories, one Chroma store, one shared uploads folder: the replicas are one owner.
    A host that indexed before sharing was turned on keeps its documents (its id seeds the shared one)."""
    import chromadb

    from assistant.settings import Settings
    from assistant.web.documents_tab import DocumentsTab

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "faq.md").write_text(NOTE.replace("zorblax", "quuxnorm").replace("Zorblax", "Quuxnorm"))

    def replica(name: str, shared: bool = True):
        s = Settings(
            data_dir=tmp_path / name,
            corpus_paths=[corpus],
            shared_uploads_dir=tmp_path / "shared" if shared else None,
        )
        return make_assistant(s, client=client)

    alone = replica("a", shared=False)
    assert alone.ingest().added == ["faq.md"]
    a, b = replica("a"), replica("b")
    assert a.store.owner == b.store.owner == alone.store.owner
    assert b.ingest().unchanged == ["faq.md"] and b.stats()["files"] == 1, "no second copy of the corpus"
    note = tmp_path / "zorblax-notes.md"
    note.write_text(NOTE)
    status, *_ = DocumentsTab(a).upload([str(note)])
    assert "units indexed" in status
    listed = {row[0]: row for row in b.documents()}
    assert listed["zorblax-notes.md"][2] == "uploaded" and listed["faq.md"][2] == "corpus"
    assert b.search("what is zorblax normalisation?", k=1)[0].source == "zorblax-notes.md"
    status, *_ = DocumentsTab(b).remove(listed["zorblax-notes.md"][3])
    assert status.startswith("Removed **zorblax-notes.md**")
    assert not list((tmp_path / "shared").glob("*/zorblax-notes.md"))
    assert [row[0] for row in a.documents()] == ["faq.md"]
    other = replica("c", shared=False)  # a host of another deployment on the same Chroma store
    assert other.store.owner != a.store.owner
    assert {row[2] for row in other.documents()} == {"another host"}


# -- documents ------------------------------------------------------------------------------------


def test_a_document_uploaded_through_one_replica_is_the_same_document_on_the_other(topology):
    key = topology.keys["root"]
    a = Page(topology.urls["a"], topology.session("a", "root"))
    b = Page(topology.urls["b"], topology.session("b", "root"))
    before = mcp_search(topology.urls["b"], key, "what is zorblax normalisation?")  # B's search is warm
    assert all(p["file"] != "zorblax-notes.md" for p in before)

    status = a.upload("zorblax-notes.md", NOTE.encode())
    assert "units indexed" in status, status
    stored = list((topology.root / "shared-uploads").glob("*/zorblax-notes.md"))
    assert len(stored) == 1, "stored once, on the storage every replica shares"

    for page in (a, b):  # the same list on both replicas, the upload removable from both
        listed = documents(page)
        assert listed["zorblax-notes.md"][0] == "uploaded"
        assert listed["deep-learning-projects-faq.md"][0] == "corpus"
        assert "another host" not in {origin for origin, _ in listed.values()}
    # B's next search finds it, by its word (BM25) and by its meaning (vectors), without a restart
    for query in ("what is zorblax normalisation?", "rescaling each activation by the channel median"):
        top = mcp_search(topology.urls["b"], key, query)[0]
        assert top["file"] == "zorblax-notes.md", (query, top)
    # the source itself, read back through B (and nginx): the unit, and the whole document downloaded
    for where in ("b", "nginx"):
        unit = mcp_read(topology.urls[where], key, top["uri"])
        assert "median of its channel" in unit
        got = httpx.get(topology.urls[where] + top["document"], headers={"Authorization": f"Bearer {key}"})
        assert got.status_code == 200 and got.content == NOTE.encode(), (where, got.status_code)
    # B removes it: gone from the index, the list and the shared storage, for A too
    status = b.remove(documents(b)["zorblax-notes.md"][1])
    assert status.startswith("Removed **zorblax-notes.md**"), status
    assert not stored[0].exists()
    gone = httpx.get(topology.urls["a"] + top["document"], headers={"Authorization": f"Bearer {key}"})
    assert gone.status_code == 404
    assert "zorblax-notes.md" not in documents(a)
    after = mcp_search(topology.urls["a"], key, "what is zorblax normalisation?")
    assert all(p["file"] != "zorblax-notes.md" for p in after)


# -- conversations -------------------------------------------------------------------------------


def test_a_conversation_started_on_one_replica_continues_on_the_other(topology):
    question = "How can I stop my model from overfitting?"
    a = Page(topology.urls["a"], topology.session("a", "root"))
    first = a.ask(question)
    conv_id = first[6]
    assert conv_id, first
    # a tab on B opened at the conversation's address: the turns and the sources come from the database
    b = Page(topology.urls["b"], topology.session("b", "root"), query=f"?c={conv_id}")
    restored = b.load("sources")
    shown, sources = restored[0], restored[2]
    assert question in json.dumps(shown[0]), shown
    assert sources == first[3] and "appear here" not in sources, "the sources panel as A drew it"
    follow = b.ask("which of those is easiest?", conv_id)
    assert follow[6] == conv_id
    # and A, asked again for it, shows both turns (neither replica kept it to itself)
    again = Page(topology.urls["a"], topology.session("a", "root"), query=f"?c={conv_id}").load("sources")
    assert "which of those is easiest?" in json.dumps(again[0])


# -- a replica killed mid-answer ---------------------------------------------------------------------


def test_a_replica_killed_mid_answer_leaves_the_other_serving_and_loses_nothing_finished(topology):
    key = {"Authorization": f"Bearer {topology.keys['root']}"}
    nginx = topology.urls["nginx"]
    probe = httpx.get(f"{nginx}/v1/models", headers=key, timeout=60)
    victim = topology.served_by(probe)  # ip_hash: this client's replica
    survivor = "b" if victim == "a" else "a"
    # finished before the kill: a saved conversation and a login, both made through nginx (on the victim)
    cookies = topology.session("nginx", "root")
    page = Page(nginx, cookies)
    conv_id = page.ask("How do I choose a learning rate?")[6]
    assert conv_id
    question = {"messages": [{"role": "user", "content": "My loss plateaus, what can I do?"}], "stream": True}
    try:
        with httpx.stream(
            "POST",
            f"{nginx}/v1/chat/completions",
            headers=key,
            json={**question, "max_tokens": 1024},
            timeout=300,
        ) as answer:
            assert answer.status_code == 200
            lines = answer.iter_lines()
            next(lines)  # the answer has begun, on this client's replica (ip_hash): the victim
            os.killpg(topology.procs[victim].pid, signal.SIGKILL)
            topology.procs[victim].wait(60)
            try:
                for _ in lines:  # whatever was in flight is cut off with the process
                    pass
            except httpx.HTTPError:
                pass
        # new requests through nginx go to the survivor: API, login, the page, an answer with sources
        models = httpx.get(f"{nginx}/v1/models", headers=key, timeout=60)
        assert models.status_code == 200 and topology.served_by(models) == survivor
        full = httpx.post(
            f"{nginx}/v1/chat/completions", headers=key, json={**question, "stream": False}, timeout=300
        )
        assert full.status_code == 200 and full.json()["sources"], full.text[:300]
        assert topology.login("nginx", "root").status_code == 303
        # nothing finished is lost: the session made on the victim, and its saved conversation
        restored = Page(nginx, cookies, query=f"?c={conv_id}").load("sources")
        assert "How do I choose a learning rate?" in json.dumps(restored[0])
    finally:  # the topology as the other tests expect it: the victim restarted, ready again
        topology.start_replica(victim)
    back = httpx.get(f"{topology.urls[victim]}/", cookies=cookies, follow_redirects=False, timeout=60)
    assert back.status_code == 200, "the restarted replica knows the session made before the kill"
