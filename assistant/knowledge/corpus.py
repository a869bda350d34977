"""Corpus loading: cleaned text (files.py reads it) -> Q&A units -> embedder-sized pieces.

A *unit* is what a search returns and a citation points to: one question with its whole answer (or
one section of a document that is not a Q&A). A unit whose text does not fit the embedder's input
window is cut into *pieces* on paragraph/sentence boundaries, each headed by the question again, so
nothing is silently truncated out of the embedding. Besides its pieces a unit gets vector-only *keys*:
the question alone and each answer sentence headed by the question. A user's symptom ("CUDA out of
memory") often matches one sentence of a long answer far better than the whole answer; the unit's
vector score is the best of all its vectors.

Q&A documents are recognised by their headings (any mix of these, as in the shipped corpus):
markdown headings (`### 3\\. Question?`), numbered question lines (`01. Question?`), bare question
lines standing alone as a paragraph, and numbered blog sections (`#1 Title`). Files with fewer than
two such headings go through langchain's heading-aware generic splitter instead.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from assistant.knowledge.errors import LoadError
from assistant.knowledge.files import read_text

CHUNKER_VERSION = "5"  # 5: unit ids include the document's key; records carry a generation

TokenCounter = Callable[[str], int]


@dataclass
class Unit:
    source: str  # file name, shown to users
    path: str  # resolved path, the key ingest tracks files by
    doc_title: str
    title: str  # the question (or section heading)
    text: str  # the answer body, cleaned
    position: int  # order of the unit in its document
    kind: str  # "qa" | "section" | "intro" | "passage"
    pieces: list[str] = field(default_factory=list)  # embedded + BM25 texts, each headed by the title
    keys: list[str] = field(default_factory=list)  # extra vector-only keys: the question, each sentence
    doc: str = ""  # the document's key: its path relative to the folder it was indexed from
    repeat: int = 0  # > 0 for the n-th repeat of an identical unit in the same document

    @property
    def id(self) -> str:
        """Unique per document and stable across runs and machines with the same corpus layout: derived
        from the document's key (its path under the indexed folder, never the machine's absolute path)
        and the unit's content."""
        seed = f"{self.doc or self.source}\n{self.title}\n{self.text}"
        seed += f"\n{self.repeat}" if self.repeat else ""
        return hashlib.sha256(seed.encode()).hexdigest()[:16]

    @property
    def header(self) -> str:
        # A bare section heading ("Transfer Learning") says little on its own; give it the document's.
        if self.kind in {"section", "passage"} and self.doc_title and self.doc_title not in self.title:
            return f"{self.doc_title}: {self.title}"
        return self.title


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------------

# Lines that are never content: image placeholders, blog/comment footers, share widgets.
BOILERPLATE = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^see the source image$",
        r"^(gif|png|jpe?g|image|img|photo)$",
        r"^pin by .+ on .+$",
        r"^image( source)?:.*$",
        r"^no comments:?$",
        r"^post a comment$",
        r"^\d+ (responses?|comments?|replies) to .*$",
        r"^leave a (reply|comment).*$",
        r"^design a site like this with wordpress\.com$",
        r"^get started$",
        r"^(share this|like this|related( posts)?):?$",
        r"^(do )?follow (us|our) .*$",
        r"^we will meet again.*$",
        r"^subscribe to:? post comments.*$",
        r".*\bcomment it down\b.*$",
    )
]

_BOLD = re.compile(r"(\*\*|__)(.+?)\1")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>])")
_BULLET = re.compile(r"^(?:[•●▪◦·]|\*(?!\*)|-(?=\*\*)|-\s)\s*")
_TOPIC_ITEM = re.compile(r"^\*\*[^*\n]{1,60}\*\*\s*:")  # "**Topic**: text", a list item without its dash
_ORDERED = re.compile(r"^(\d{1,2})[.)]\s+")


def clean_text(text: str) -> str:
    """Normalise whitespace and markdown glitches and drop boilerplate lines."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace("\u200b", "").replace("\t", "    ")
    out: list[str] = []
    for raw in text.split("\n"):
        line = _MD_ESCAPE.sub(r"\1", raw.strip())
        line = re.sub(r" {2,}", " ", line)
        if any(p.match(line) for p in BOILERPLATE):
            continue
        if _BULLET.match(line):
            line = "- " + _BULLET.sub("", line, count=1)
        elif _TOPIC_ITEM.match(line):
            line = "- " + line
        line = _BOLD.sub(r"\2", line)
        out.append(line)
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --------------------------------------------------------------------------------------------------
# Sectioning
# --------------------------------------------------------------------------------------------------

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
_BLOG_SECTION = re.compile(r"^#(\d{1,3})\s+(\S.*)$")
_NUMBERED_Q = re.compile(r"^(?:q(?:uestion)?\s*)?\d{1,3}\s*[.):]\s+(.{8,}\?)$", re.IGNORECASE)
_NUMBER_PREFIX = re.compile(r"^(?:q(?:uestion)?\s*)?\d{1,3}\s*[.):]\s+", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.?!])\s+|\n+")
_ANSWER_PREFIX = re.compile(r"^(?:answer|ans|a)\s*[:.-]\s*", re.IGNORECASE)


@dataclass
class _Heading:
    line: int
    title: str
    question: bool
    level: int  # markdown level; 0 for text-style headings


def _find_headings(lines: list[str]) -> list[_Heading]:
    headings: list[_Heading] = []
    for i, line in enumerate(lines):
        if not line:
            continue
        alone = (i == 0 or not lines[i - 1]) and (i + 1 == len(lines) or not lines[i + 1])
        if m := _BLOG_SECTION.match(line):
            headings.append(_Heading(i, m.group(2).strip(), False, 0))
        elif m := _MD_HEADING.match(line):
            title = _NUMBER_PREFIX.sub("", m.group(2).strip())
            headings.append(_Heading(i, title, title.endswith("?"), len(m.group(1))))
        elif alone and (m := _NUMBERED_Q.match(line)):
            headings.append(_Heading(i, m.group(1).strip(), True, 0))
        elif alone and _is_bare_question(line):
            headings.append(_Heading(i, line, True, 0))
    return headings


def _is_bare_question(line: str) -> bool:
    words = line.split()
    return (
        line.endswith("?")
        and 2 <= len(words) <= 30
        and line[0].isalpha()
        and not line.startswith("- ")
        and not _ORDERED.match(line)
    )


def _title_from_filename(path: Path) -> str:
    words = re.split(r"[-_\s]+", path.stem)
    small = {"in", "of", "and", "the", "a", "for", "to", "on"}
    return " ".join(w if (w.lower() in small and i) else w[:1].upper() + w[1:] for i, w in enumerate(words))


def _doc_title(lines: list[str], headings: list[_Heading], path: Path) -> tuple[str, int]:
    """The document's title and the line index after it (0 if the title is not in the text)."""
    first = next((i for i, line in enumerate(lines) if line), None)
    if first is None:
        return _title_from_filename(path), 0
    h = next((h for h in headings if h.line == first), None)
    if h is not None and h.level == 1:
        return h.title, first + 1
    line = lines[first]
    if h is None and len(line.split()) <= 12 and not line.endswith((".", "?", ":", "!")):
        return line.lstrip("# ").strip(), first + 1
    return _title_from_filename(path), 0


def _body(lines: list[str]) -> str:
    text = "\n".join(lines).strip()
    text = _ANSWER_PREFIX.sub("", text, count=1)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def split_sections(text: str, path: Path) -> tuple[str, list[tuple[str, str, str]]] | None:
    """(doc title, [(kind, title, body)]) for a Q&A-style document, or None if it is not one."""
    lines = text.split("\n")
    headings = _find_headings(lines)
    doc_title, start = _doc_title(lines, headings, path)
    headings = [h for h in headings if h.line >= start]
    if sum(h.question for h in headings) < 2 and sum(h.level == 0 for h in headings) < 2:
        return None
    sections: list[tuple[str, str, str]] = []
    intro = _body(lines[start : headings[0].line]) if headings else ""
    if len(intro.split()) >= 15:
        sections.append(("intro", doc_title, intro))
    for h, nxt in zip(headings, headings[1:] + [None], strict=True):
        body = _body(lines[h.line + 1 : nxt.line if nxt else len(lines)])
        if body:
            sections.append(("qa" if h.question else "section", h.title, body))
    return doc_title, sections


def _generic_sections(text: str, path: Path) -> tuple[str, list[tuple[str, str, str]]]:
    """Heading-aware split of a document that is not Q&A (langchain's markdown header splitter)."""
    lines = text.split("\n")
    doc_title, start = _doc_title(lines, _find_headings(lines), path)
    body = "\n".join(lines[start:])
    splitter = MarkdownHeaderTextSplitter(
        headers_to_split_on=[("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
    )
    sections = []
    for doc in splitter.split_text(body):
        trail = [doc.metadata[k] for k in ("h1", "h2", "h3", "h4") if k in doc.metadata]
        if doc.page_content.strip():
            sections.append(("passage", " > ".join(trail) or doc_title, doc.page_content.strip()))
    return doc_title, sections


# --------------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------------


class Chunker:
    """Turns a file into units whose pieces each fit the embedder's window (counted with its tokenizer)."""

    def __init__(self, count_tokens: TokenCounter, max_tokens: int, overlap_tokens: int = 24):
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens

    @property
    def params(self) -> dict[str, int | str]:
        return {"chunker": CHUNKER_VERSION, "max_tokens": self.max_tokens, "overlap": self.overlap_tokens}

    def _splitter(self, size: int) -> RecursiveCharacterTextSplitter:
        return RecursiveCharacterTextSplitter(
            chunk_size=size,
            chunk_overlap=min(self.overlap_tokens, size // 4),
            length_function=self.count_tokens,
            # Lines first, but never right after "Challenges:"-style sub-headings, then sentences.
            separators=[r"(?<![:\n])\n+", r"(?<=[.?!;])\s+", r",\s+", r"\s+", ""],
            is_separator_regex=True,
            keep_separator="end",
        )

    def pieces(self, header: str, body: str) -> list[str]:
        """`header\\n\\nbody` if it fits, else body split so each piece plus header fits."""
        whole = f"{header}\n\n{body}"
        if self.count_tokens(whole) <= self.max_tokens:
            return [whole]
        room = self.max_tokens - self.count_tokens(header + "\n\n") - 2
        if room < 16:  # an absurdly long heading: give it part of the room
            header = header[: len(header) // 2]
            room = self.max_tokens // 2
        out = []
        for part in self._splitter(room).split_text(body):
            piece = f"{header}\n\n{part}"
            # The splitter measures parts alone; joining can add a token or two at the seam.
            while self.count_tokens(piece) > self.max_tokens:
                piece = piece[: int(len(piece) * 0.95)]
            out.append(piece)
        return out

    def keys(self, header: str, body: str) -> list[str]:
        """The question alone plus one key per answer sentence (those that fit the window whole)."""
        out = [header]
        for sentence in _SENTENCE.split(body):
            sentence = sentence.strip(" -")
            if len(sentence.split()) >= 4:
                key = f"{header}: {sentence}"
                if self.count_tokens(key) <= self.max_tokens:  # longer ones are covered by the pieces
                    out.append(key)
        return out

    def load(self, path: Path, max_bytes: int | None = None, key: str | None = None) -> list[Unit]:
        """Units of one file (`key`: the document's key, default its name); LoadError if it cannot be
        read or holds no text."""
        path = Path(path)
        text = clean_text(read_text(path, max_bytes))
        if not text:
            raise LoadError(f"{path.name}: no text in file")
        parsed = split_sections(text, path)
        doc_title, sections = parsed if parsed else _generic_sections(text, path)
        units: list[Unit] = []
        for kind, title, body in sections:
            unit = Unit(path.name, str(path.resolve()), doc_title, title, body, 0, kind)
            if kind == "passage":
                # No Q&A structure: every window-sized piece is a unit of its own.
                for i, piece in enumerate(self.pieces(unit.header, body)):
                    part = piece.split("\n\n", 1)[-1]
                    name = title if i == 0 else f"{title} (part {i + 1})"
                    units.append(
                        Unit(
                            path.name,
                            unit.path,
                            doc_title,
                            name,
                            part,
                            0,
                            kind,
                            [piece],
                            self.keys(name, part)[1:],
                        )
                    )
            else:
                unit.pieces = self.pieces(unit.header, body)
                unit.keys = self.keys(unit.header, body)
                units.append(unit)
        if not units:
            raise LoadError(f"{path.name}: no text in file")
        seen: dict[str, int] = {}
        for i, unit in enumerate(units):
            unit.position = i
            unit.doc = key or path.name
            base = unit.id
            unit.repeat = seen.get(base, 0)  # the same question and answer twice: still two ids
            seen[base] = unit.repeat + 1
        return units
