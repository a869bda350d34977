"""`GET /documents/{doc_id}`: the whole document an answer's source came from, as a download.

Who may: anyone signed in (a session cookie) or holding an API key, since every user already reads
passages of every document in answers; nobody else (401). What: only a document in this deployment's
index (an id from a source, never a path), and only while its file lies under the configured corpus
paths or the uploads folder, which the replicas of one deployment share (`shared_uploads_dir`), so
any replica serves what another indexed. Anything else is 404 with the same words, so the route says
nothing about what exists. The file is always an attachment with `nosniff`: an uploaded `.html`
never renders as a page of this origin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from assistant.knowledge.retrieval import document_url
from assistant.web.api import ApiError, ChatAPI
from assistant.web.auth import WebContext

_TYPES = {".md": "text/markdown", ".txt": "text/plain", ".pdf": "application/pdf", ".html": "text/html"}
_NOT_FOUND = "no such document in the index (it may have been removed)"
__all__ = ["document_url", "documents_router"]


def _roots(settings: Any) -> list[Path]:
    return [Path(p).resolve() for p in [*settings.corpus_paths, settings.uploads_dir]]


def _within(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def documents_router(assistant: Any, web: WebContext) -> APIRouter:
    router = APIRouter()

    keys = ChatAPI(assistant, web.accounts, auth=web.auth)  # API keys, checked and throttled as /v1

    async def refusal(request: Request) -> Response | None:
        """None when the caller may read documents; else the 401 (or 429 while throttled) to send."""
        if not web.auth or await run_in_threadpool(web.session_user, request) is not None:
            return None
        if not request.headers.get("authorization", "").strip():
            return JSONResponse({"error": "log in or send an API key (Authorization: Bearer KEY)"}, 401)
        try:
            await keys.user(request)
        except ApiError as exc:
            return exc.response()
        return None

    def locate(doc_id: str) -> tuple[Path, str] | None:
        info = assistant.store.files().get(doc_id)
        if info is None or info["owner"] != assistant.store.owner:
            return None
        path = Path(info["path"]).resolve()
        if not _within(path, _roots(assistant.settings)) or not path.is_file():
            return None
        return path, info["source"]

    @router.get("/documents/{doc_id}")
    async def download(doc_id: str, request: Request) -> Response:
        if (refused := await refusal(request)) is not None:
            return refused
        found = await run_in_threadpool(locate, doc_id)
        if found is None:
            return JSONResponse({"error": _NOT_FOUND}, 404)
        path, name = found
        return FileResponse(
            path,
            filename=Path(name).name,
            media_type=_TYPES.get(path.suffix.lower(), "application/octet-stream"),
            content_disposition_type="attachment",
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"},
        )

    return router
