"""A training run attached to a chat message: a log file uploaded in the message box, or a log pasted
into the message itself. The run is read, judged and drawn at once (runs.diagnose without an answer);
the chat then asks the documents the symptom question built from its findings and the user's words.

Pasted text counts as a log only when it plainly is one: at least `MIN_PASTED_ROWS` lines that read
as a log with metrics (as many points as the detectors need to judge a trend). Prose lines before and
after the log are the user's own words; a message that quotes a line or two of numbers ("my loss is
stuck at loss: 0.4, why?") stays a question. A single line is never read as a log (nor as a path).

Uploads: Gradio hands the handler the path of the uploaded copy. A client can name any path in its
payload; Gradio refuses one it did not upload (app.py turns that check on for our mounted app), and
the handler reads a path only inside Gradio's upload folder as well: no client can make the server
read /etc/passwd, the database, or anything else it did not upload.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from pathlib import Path
from typing import Any

from gradio.utils import get_upload_folder

from assistant.chat.messages import message_text, too_long
from assistant.runs.compare import Comparison
from assistant.runs.detect import THRESHOLDS, Finding
from assistant.runs.diagnose import build_compare_question, build_question, diagnose, diagnose_pair
from assistant.runs.parse import Limits, Run, RunParseError, parse_run

log = logging.getLogger(__name__)

PASTED_FILE = "pasted_text.txt"  # what Gradio's box makes of a paste longer than max_plain_text_length
MIN_PASTED_ROWS = THRESHOLDS.min_points  # fewer points: no trend to judge, so it stays a question
NOT_UPLOADED = "Attach the log with the message box's upload button: that file was not uploaded here."

# A line that reads as part of a log: a `name: 0.4` / `name=0.4` pair (JSON too), an `Epoch 3` or
# `step 120` counter, a progress bar's `62/125`, or a CSV row or header (cells without spaces).
_LOG_LINE = re.compile(
    r"""[:=]\s*[-+]?(?:\d|\.\d|nan\b|inf\b)"""
    r"""|\b(?:epoch|step|iter|iteration)\b\s*[:#]?\s*\d"""
    r"""|\d+/\d+"""
    r"""|^\s*[\w.+\-/"']*(?:\s*[,\t;]\s*[\w.+\-/"']*)+\s*$""",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^\s*(?:```|~~~)[\w-]*\s*$")  # a Markdown code fence around a pasted log
_STRUCTURE = re.compile(r"^\s*[\"'{}\[\]]|[{\[,]\s*$")  # a line of a JSON document: `{`, `"key": [`


def is_prose(line: str) -> bool:
    """A line of the user's own words: letters, and nothing of a log's or a JSON document's shape."""
    return (
        bool(re.search(r"[^\W\d_]{2}", line))
        and not _FENCE.match(line)
        and not _STRUCTURE.search(line)
        and not _LOG_LINE.search(line)
    )


def _finding(f: dict[str, Any]) -> Finding:
    return Finding(f["kind"], f["evidence"], f.get("details") or {}, f.get("confidence", "medium"))


class NotAttached(ValueError):
    """The message's file or pasted log cannot be attached; the text says why, in the user's terms."""


def message_parts(message: Any) -> tuple[str, list[str]]:
    """(text, uploaded file paths) of what the message box sends: {text, files} from the multimodal
    box, a plain string from other callers (Retry, tests)."""
    if not isinstance(message, dict):
        return message_text(message), []
    files = []
    for f in message.get("files") or []:
        path = f.get("path") if isinstance(f, dict) else getattr(f, "path", f)
        if path:
            files.append(str(path))
    return message_text(message.get("text")), files


def split_pasted(text: str) -> tuple[str, str] | None:
    """(the log part, the user's words around it) when the text may hold a pasted log, else None.
    Only a shape test: the caller parses the log part to decide."""
    lines = text.splitlines()
    if sum(1 for ln in lines if ln.strip()) < MIN_PASTED_ROWS:
        return None

    def skippable(line: str) -> bool:
        return not line.strip() or bool(_FENCE.match(line)) or is_prose(line)

    start, end = 0, len(lines)
    while start < end and skippable(lines[start]):
        start += 1
    while end > start and skippable(lines[end - 1]):
        end -= 1
    middle = [ln for ln in lines[start:end] if not _FENCE.match(ln)]
    if sum(1 for ln in middle if ln.strip()) < MIN_PASTED_ROWS:
        return None
    words = [ln.strip() for ln in lines[:start] + lines[end:] if is_prose(ln)]
    return "\n".join(middle), "\n".join(words)


def printable(text: str) -> str:
    """Text without control or direction-changing characters (an RTL override would show
    "report\u202egpj.exe" as "reportexe.jpg")."""
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf"))


def display_name(name: str) -> str:
    """A file name as it is shown and saved: printable, at most 200 characters."""
    return printable(name).replace("\n", " ")[:200] or "training log"


def uploaded(path: str) -> Path:
    """The uploaded file at `path`, refused unless it lies in Gradio's upload folder."""
    root = Path(get_upload_folder()).resolve()
    try:
        p = Path(path).resolve()
    except (OSError, RuntimeError, ValueError):
        raise NotAttached(NOT_UPLOADED) from None
    if not p.is_relative_to(root) or p == root or not p.is_file():
        raise NotAttached(NOT_UPLOADED)
    return p


class RunAttacher:
    """Reads what the message box sends into (the user's words, the attached run or None). An
    attached run that Retry sends again is held per browser tab until the re-sent message takes it."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._held: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def limits(self) -> Limits:
        return Limits.from_settings(self.settings)

    @property
    def max_bytes(self) -> int:
        return self.limits.max_bytes

    def hold(self, tab: str, attachment: dict[str, Any]) -> None:
        with self._lock:
            self._held[tab] = attachment

    def release(self, tab: str) -> dict[str, Any] | None:
        with self._lock:
            return self._held.pop(tab, None)

    def read(self, message: Any, tab: str) -> tuple[str, dict[str, Any] | None]:
        """(the user's words, the attachment: Diagnosis.attachment()) of a message. A file that is not
        a readable training log raises NotAttached (before anything is shown or saved)."""
        text, files = message_parts(message)
        held = self.release(tab)
        if len(files) > 2:
            raise NotAttached("Attach one training log, or two to compare them.")
        if len(files) == 2:
            return text.strip(), self._attach_pair([uploaded(f) for f in files], text.strip())
        if files:
            path = uploaded(files[0])
            if path.name != PASTED_FILE:
                return text.strip(), self._attach(path, text.strip(), path.name)
            text = f"{text}\n{self._pasted_file(path)}"  # a long paste: read as if typed
        if why := too_long(text, self.settings.message_max_kb):
            raise NotAttached(why)
        pasted = split_pasted(text)
        if pasted is not None:
            log_text, words = pasted
            try:
                run = parse_run(log_text, limits=self.limits)
            except RunParseError:
                run = None  # not a log after all: a question with numbers in it
            if run is not None and len(run) >= MIN_PASTED_ROWS:
                return words, self._attach(run, words, run.name)
        if held is not None:
            return text.strip(), self.with_question(held, text.strip())
        return text.strip(), None

    def with_question(self, attachment: dict[str, Any], words: str) -> dict[str, Any]:
        """The attachment asking the documents about `words` (Retry sends the same run again)."""
        prompts = self.settings.prompts_dir
        if pair := attachment.get("compared"):
            findings = tuple([_finding(f) for f in fs] for fs in pair["findings"])
            comparison = Comparison(
                tuple(pair["names"]), findings, pair["metric"], None, None, pair["summary"]
            )  # type: ignore[arg-type]
            return {**attachment, "question": build_compare_question(comparison, words, prompts)}
        findings = [_finding(f) for f in attachment["findings"]]
        return {**attachment, "question": build_question(findings, words, prompts)}

    def _pasted_file(self, path: Path) -> str:
        limit = self.settings.message_max_kb * 1024
        if path.stat().st_size > limit:
            raise NotAttached(
                f"The pasted text is over {self.settings.message_max_kb} KB (message_max_kb): attach the "
                "log as a file instead."
            )
        return message_text(path.read_text(encoding="utf-8", errors="replace"))

    def _attach_pair(self, paths: list[Path], words: str) -> dict[str, Any]:
        try:
            found = diagnose_pair(
                *paths, words or None, None, prompts_dir=self.settings.prompts_dir, limits=self.limits
            )
        except RunParseError as exc:
            raise NotAttached(f"Not attached: {printable(str(exc))}") from None
        except Exception:
            log.exception("reading two attached logs failed")
            raise NotAttached("Not attached: the two files could not be read as training logs.") from None
        for run in found.runs:
            run.name = display_name(run.name)
        found.comparison.names = tuple(run.name for run in found.runs)  # type: ignore[assignment]
        attachment = found.attachment()
        attachment["compared"] = {
            "names": list(found.comparison.names),
            "findings": [[f.to_dict() for f in fs] for fs in found.comparison.findings],
            "metric": found.comparison.metric,
            "summary": found.comparison.summary,
        }
        return attachment

    def _attach(self, source: Path | Run, words: str, name: str) -> dict[str, Any]:
        try:
            found = diagnose(
                source, words or None, None, prompts_dir=self.settings.prompts_dir, limits=self.limits
            )
        except RunParseError as exc:
            raise NotAttached(f"Not attached: {printable(str(exc))}") from None
        except Exception:  # a reader failing on odd bytes: still a clear message, the app serves on
            log.exception("reading an attached log failed")
            raise NotAttached(
                f"Not attached: {display_name(name)} could not be read as a training log."
            ) from None
        found.run.name = display_name(found.run.name)
        return found.attachment()
