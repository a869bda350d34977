"""`GET /documents/{id}`: a cited source's whole document, tried as a user and as an attacker against
the live server of test_attacks (accounts on, real index, tiny model)."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import httpx

from assistant.chat.answer import Answer, Source, sources_of
from assistant.web.document_route import document_url
from assistant.web.render import sources_html
from tests.test_attacks import forget_failures, server, session  # noqa: F401 (fixtures)


def _doc_of(assistant, name: str) -> tuple[str, dict]:
    return next((d, f) for d, f in assistant.store.files().items() if f["source"] == name)


def test_a_cited_source_links_to_its_whole_document_for_signed_in_users_only(server):  # noqa: F811
    url, assistant = server["url"], server["assistant"]
    hit = assistant.search("Why does my loss become NaN?")[0]
    link = document_url(hit.doc)
    source = Source(
        1, hit.unit_id, hit.source, hit.doc_title, hit.title, hit.text, hit.relevance, doc=hit.doc
    )
    assert sources_of(Answer("", "", False, sources=[source]))[0]["document"] == link  # /v1 and MCP
    assert f'href="{link}" download' in sources_html({"sources": [asdict(source)]})  # the sources panel
    doc_id = hit.doc
    info = assistant.store.files()[doc_id]
    original = Path(info["path"]).read_bytes()

    assert httpx.get(url + link).status_code == 401  # nobody signed in
    assert httpx.get(url + link, headers={"Authorization": "Bearer sk-wrong"}).status_code == 401
    for client in (
        session(url, "bob"),  # any signed-in user (not only an admin)
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {server['keys']['alice']}"}),
    ):
        r = client.get(link)
        assert r.status_code == 200 and r.content == original
        assert r.headers["content-disposition"].startswith("attachment")
        assert r.headers["x-content-type-options"] == "nosniff"


def test_only_indexed_documents_under_the_corpus_or_uploads_are_served(server, tmp_path):  # noqa: F811
    url, assistant, settings = server["url"], server["assistant"], server["settings"]
    bob = session(url, "bob")
    for bad in ("nope", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "../../etc/passwd", "0" * 16):
        r = bob.get(f"/documents/{bad}")
        assert r.status_code == 404 and "passwd" not in r.text, bad

    # an uploaded document: served while its file is there, 404 (and the app still serving) once gone
    upload = settings.uploads_dir / "feedcafe" / "page.html"
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_text("<h1>Batch size</h1><script>alert(1)</script>\n\nQ: batch size?\n\nA: Try 32.\n")
    assistant.ingest([upload])
    doc_id, _ = _doc_of(assistant, "page.html")
    r = bob.get(f"/documents/{doc_id}")
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")
    shutil.rmtree(upload.parent)
    assert bob.get(f"/documents/{doc_id}").status_code == 404
    assert bob.get("/healthz").status_code == 200
