"""Files -> text: which files a corpus path holds, and the text of each supported one (Markdown and
plain text as UTF-8, a PDF's extractable text, an HTML page's visible text with its headings kept as
Markdown headings), or a LoadError saying why not."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from assistant.knowledge.errors import LoadError

SUPPORTED_SUFFIXES = {".md", ".markdown", ".txt", ".text", ".pdf", ".html", ".htm"}


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every file under the given files/folders, sorted, hidden files skipped."""
    for root in paths:
        root = Path(root).expanduser()
        if not root.exists():
            raise FileNotFoundError(f"corpus path {root} does not exist")
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                hidden = any(part.startswith(".") for part in p.relative_to(root).parts)
                if (p.is_file() or p.is_symlink()) and not hidden:  # a dangling link is reported, not lost
                    yield p
        else:
            yield root


def read_text(path: Path, max_bytes: int | None = None) -> str:
    """The text of a supported file, or LoadError saying why not."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(f"{path.name}: unsupported file type '{suffix or path.name}'")
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise LoadError(f"{path.name}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.1f} MB limit")
        raw = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"{path.name}: unreadable ({exc.strerror or exc})") from exc
    if suffix == ".pdf":
        return _pdf_text(path, raw)
    if b"\x00" in raw[:8192]:
        raise LoadError(f"{path.name}: binary file, not text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(f"{path.name}: not UTF-8 text (byte {exc.start})") from exc
    if suffix in {".html", ".htm"}:
        text = _html_to_markdown(text)
    return text


def _pdf_text(path: Path, raw: bytes) -> str:
    import io

    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(raw))
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many types for broken files
        raise LoadError(f"{path.name}: unparsable PDF ({exc})") from exc
    text = "\n\n".join(pages)
    if not text.strip():
        raise LoadError(f"{path.name}: PDF has no extractable text (scanned images?)")
    return text


def _html_to_markdown(html: str) -> str:
    """Visible text of an HTML page with its headings kept as markdown headings."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "nav", "footer", "header", "form", "svg"]):
        tag.decompose()
    for level in range(1, 7):
        for h in soup.find_all(f"h{level}"):
            h.replace_with(f"\n\n{'#' * level} {h.get_text(' ', strip=True)}\n\n")
    for li in soup.find_all("li"):
        li.replace_with(f"\n- {li.get_text(' ', strip=True)}\n")
    for block in soup.find_all(["p", "div", "br", "tr", "pre", "blockquote"]):
        block.insert_after("\n\n")
    return soup.get_text()
