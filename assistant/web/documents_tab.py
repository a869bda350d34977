"""The documents tab: upload files into the index, see what is indexed, remove a document.

Uploads are checked before anything changes: a bad file (unsupported, binary, oversized, unparsable)
is refused with its reason and the index stays as it was. Files are stored under data/uploads with a
sanitised name, so an uploaded file name can never write outside that folder.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.knowledge.corpus import SUPPORTED_SUFFIXES, LoadError


def safe_name(name: str) -> str:
    """A plain file name: no folders, no leading dots, only ordinary characters."""
    base = Path(name.replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .")
    return base or "document.txt"


class DocumentsTab:
    def __init__(self, assistant: Any):
        self.assistant = assistant
        self.settings = assistant.settings

    def table(self) -> list[list[Any]]:
        uploads = self.settings.uploads_dir.resolve()
        rows = []
        for path, info in sorted(self.assistant.store.files().items(), key=lambda kv: kv[1]["source"]):
            where = "uploaded" if Path(path).resolve().is_relative_to(uploads) else "corpus"
            rows.append([info["source"], info["units"], where, path])
        return rows

    def _refresh(self) -> tuple[Any, Any]:
        rows = self.table()
        choices = [(f"{r[0]} ({r[2]}, {r[1]} units)", r[3]) for r in rows]
        return gr.Dataframe(value=[r[:3] for r in rows]), gr.Dropdown(choices=choices, value=None)

    def upload(self, files: list[Any] | None, progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
        if not files:
            return ("", *self._refresh(), None)
        uploads = self.settings.uploads_dir.resolve()
        staging = uploads / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        limit = int(self.settings.max_file_mb * 1e6)
        lines, errors = [], []
        for i, f in enumerate(progress.tqdm(files, desc="Indexing")):
            src = Path(f if isinstance(f, str) else f.name)
            name = safe_name(getattr(f, "orig_name", None) or src.name)
            dest = (uploads / name).resolve()
            if dest.parent != uploads:  # belt and braces: never outside the uploads folder
                errors.append(f"**{name}**: refused (invalid name)")
                continue
            staged = staging / f"{i}-{name}"
            try:
                shutil.copyfile(src, staged)
                self.assistant.chunker.load(staged, max_bytes=limit)  # refuses bad files before any change
            except LoadError as exc:
                errors.append(f"**{name}**: {str(exc).split(': ', 1)[-1]}")
                staged.unlink(missing_ok=True)
                continue
            except OSError as exc:
                errors.append(f"**{name}**: could not be read ({exc.strerror or exc})")
                staged.unlink(missing_ok=True)
                continue
            staged.replace(dest)
            report = self.assistant.ingest([dest])
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

    def remove(self, path: str | None) -> Any:
        if not path:
            raise gr.Error("Pick a document to remove.")
        removed = self.assistant.remove(Path(path))
        note = ""
        p = Path(path).resolve()
        if p.is_relative_to(self.settings.uploads_dir.resolve()):
            p.unlink(missing_ok=True)
        else:
            note = " (a corpus file: it comes back on the next full ingest unless you delete it from corpus/)"
        return (f"Removed **{Path(path).name}**: {removed} vectors left the index{note}.", *self._refresh())

    def build(self) -> None:
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
        rows = self.table()
        table = gr.Dataframe(
            value=[r[:3] for r in rows],
            headers=["document", "units", "from"],
            interactive=False,
            elem_id="documents",
        )
        with gr.Row():
            pick = gr.Dropdown(
                choices=[(f"{r[0]} ({r[2]}, {r[1]} units)", r[3]) for r in rows],
                label="Remove a document",
                elem_id="remove-pick",
                scale=4,
            )
            remove = gr.Button("Remove", variant="stop", elem_id="remove", scale=1)
        files.upload(self.upload, [files], [status, table, pick, files], api_visibility="private")
        remove.click(self.remove, [pick], [status, table, pick], api_visibility="private")
