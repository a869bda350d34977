"""The documents tab: upload files into the index, see what is indexed, remove a document.

Uploads are checked before anything changes: a bad file (unsupported, binary, oversized, unparsable)
is refused with its reason and the index stays as it was. Each upload is stored as
`<uploads>/<content hash>/<the user's file name>` (`data/uploads`, or `shared_uploads_dir`, which the
replicas of one deployment share, so any of them lists, serves and removes it): the name is kept for
display (sanitised only of folders, hidden-file dots and control characters, so it can never write
outside that folder), and the folder keeps two uploads with the same (or a same-looking) name from
ever replacing each other.
Only an admin adds or removes documents, or sees the list: the handlers check the caller's role
server-side, the list is filled in per visitor when the page loads (so a non-admin's page holds
nothing of it, not even in its configuration), and a document is named by its index id, never by
its path on the server (the app also hides the tab from others, which protects nothing by itself).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.knowledge.errors import LoadError
from assistant.knowledge.files import SUPPORTED_SUFFIXES
from assistant.web.auth import NotAllowed, WebContext


def safe_name(name: str) -> str:
    """A plain file name: no folders, no leading dots, letters of any script kept (so "笔记.md" stays
    "笔记.md"), everything else but `._ -` replaced; at most 200 characters, the suffix kept."""
    base = Path(unicodedata.normalize("NFC", name).replace("\\", "/")).name
    base = re.sub(r"[^\w. -]", "_", base).strip(" .")
    if len(base) > 200:
        stem, suffix = Path(base).stem, Path(base).suffix[:20]
        base = stem[: 200 - len(suffix)] + suffix
    return base or "document.txt"


def staging_dir(uploads: Path) -> Path:
    """Where this machine checks an upload before storing it: inside the uploads folder (so storing is
    a rename, never a copy across file systems), one folder per machine, as replicas may share it."""
    return uploads / ".staging" / safe_name(socket.gethostname())


def clean_staging(uploads: Path) -> None:
    """Drop what an upload killed while being checked left in this machine's staging folder (never
    indexed); other replicas' uploads in progress are theirs."""
    shutil.rmtree(staging_dir(uploads), ignore_errors=True)


class DocumentsTab:
    def __init__(self, assistant: Any, web: WebContext | None = None):
        """`web`: the app's accounts, to check roles; None only when driven directly from Python."""
        self.assistant = assistant
        self.settings = assistant.settings
        self.web = web

    def _require_admin(self, request: gr.Request | None) -> None:
        if self.web is None:
            return
        try:
            self.web.admin(request)
        except NotAllowed:
            raise gr.Error("Only an administrator may add or remove documents.") from None

    def table(self) -> list[list[Any]]:
        """[name shown, units, from, document id] per indexed document (`Assistant.documents`)."""
        return [list(row) for row in self.assistant.documents()]

    def _choices(self, rows: list[list[Any]]) -> list[tuple[str, str]]:
        return [(f"{r[0]} ({r[2]}, {r[1]} units)", r[3]) for r in rows if r[2] != "another host"]

    def _refresh(self) -> tuple[Any, Any]:
        rows = self.table()
        choices = self._choices(rows)
        return gr.Dataframe(value=[r[:3] for r in rows]), gr.Dropdown(choices=choices, value=None)

    def load(self, request: gr.Request) -> tuple[Any, Any]:
        """The list for an admin's page; nothing for anyone else's."""
        try:
            self._require_admin(request)
        except gr.Error:
            return gr.skip(), gr.skip()
        return self._refresh()

    def upload(
        self,
        files: list[Any] | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
        request: gr.Request | None = None,
    ) -> Any:
        self._require_admin(request)
        if not files:
            return ("", *self._refresh(), None)
        uploads = self.settings.uploads_dir.resolve()
        staging = staging_dir(uploads)
        staging.mkdir(parents=True, exist_ok=True)
        limit = int(self.settings.max_file_mb * 1e6)
        lines, errors = [], []
        for f in progress.tqdm(files, desc="Indexing"):
            src = Path(f if isinstance(f, str) else f.name)
            name = safe_name(getattr(f, "orig_name", None) or src.name)
            fd, tmp = tempfile.mkstemp(dir=staging, suffix=Path(name).suffix)  # unique per upload
            os.close(fd)
            staged = Path(tmp)
            try:
                shutil.copyfile(src, staged)
                self.assistant.chunker.load(staged, max_bytes=limit)  # refuses bad files before any change
                digest = hashlib.sha256(staged.read_bytes()).hexdigest()[:16]
            except LoadError as exc:
                errors.append(f"**{name}**: {str(exc).split(': ', 1)[-1]}")
                staged.unlink(missing_ok=True)
                continue
            except OSError as exc:
                errors.append(f"**{name}**: could not be read ({exc.strerror or exc})")
                staged.unlink(missing_ok=True)
                continue
            dest = (uploads / digest / name).resolve()
            if dest.parent.parent != uploads:  # belt and braces: never outside the uploads folder
                errors.append(f"**{name}**: refused (invalid name)")
                staged.unlink(missing_ok=True)
                continue
            dest.parent.mkdir(exist_ok=True)  # another replica may make it at the same time: fine
            staged.replace(dest)  # same name and same bytes: the same file, "unchanged" below
            report = self.assistant.ingest([dest])
            if self.web is not None:
                self.web.metrics.ingest(report)
            if report.skipped:
                errors.append(f"**{name}**: {report.skipped[0][1]}")
            elif report.units:
                lines.append(f"**{name}**: {report.units} units indexed, searchable now")
            else:
                lines.append(f"**{name}**: already indexed, unchanged")
        for e in errors:
            gr.Warning(re.sub(r"\*\*", "", e))
        status = "\n\n".join(lines + [f"❌ {e}" for e in errors])
        return (status, *self._refresh(), None)

    def remove(self, doc_id: str | None, request: gr.Request | None = None) -> Any:
        self._require_admin(request)
        if not doc_id:
            raise gr.Error("Pick a document to remove.")
        info = self.assistant.store.files().get(str(doc_id))
        if info is None or info["owner"] != self.assistant.store.owner:
            raise gr.Error("That document is not in this server's index (any more): pick one from the list.")
        path = info["path"]
        removed = self.assistant.remove(Path(path))
        note = ""
        p, uploads = Path(path).resolve(), self.settings.uploads_dir.resolve()
        if p.is_relative_to(uploads):
            p.unlink(missing_ok=True)
            if p.parent != uploads:  # its own folder (uploads/<hash>/name): gone when empty
                with contextlib.suppress(OSError):
                    p.parent.rmdir()
        else:
            note = " (a corpus file: it comes back on the next full ingest unless you delete it from corpus/)"
        return (f"Removed **{info['source']}**: {removed} vectors left the index{note}.", *self._refresh())

    def build(self, demo: gr.Blocks) -> None:
        gr.Markdown(
            f"Add `.md`, `.txt`, `.pdf` or `.html` files (up to {self.settings.max_file_mb:g} MB each). "
            "They are indexed incrementally and answer questions at once."
        )
        files = gr.File(
            label="Add documents",
            file_count="multiple",
            file_types=sorted(SUPPORTED_SUFFIXES),
            elem_id="upload",
        )
        status = gr.Markdown(elem_id="upload-status")
        table = gr.Dataframe(
            value=[],
            headers=["document", "units", "from"],
            interactive=False,
            elem_id="documents",
        )
        with gr.Row():
            pick = gr.Dropdown(
                choices=[],
                allow_custom_value=True,  # checked by the handler, which never lists the others
                label="Remove a document",
                elem_id="remove-pick",
                scale=4,
            )
            remove = gr.Button("Remove", variant="stop", elem_id="remove", scale=1)
        files.upload(self.upload, [files], [status, table, pick, files], api_visibility="private")
        remove.click(self.remove, [pick], [status, table, pick], api_visibility="private")
        demo.load(self.load, None, [table, pick], api_visibility="private")
