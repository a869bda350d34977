"""The problem card: what the user has said about their setup (model, data, hardware and memory,
framework, batch size, precision, the attached run), kept per conversation and used by later turns.

Extraction is deterministic (regular expressions over the generic vocabularies of setup_vocab.py;
no LLM call) and runs on each user message. A card is a plain JSON-safe dict ``{field: text}``; the
fields the user typed by hand in the panel are listed under ``EDITED``.

How a message updates the card (decided for issue 12; `merge` implements it):
- each sentence is scanned. A fact in a *question* ("Would ViT be better?") only fills an empty
  field, and the fields a user tends to ask about hypothetically (model, batch size, precision) count
  in a question only after "my"/"our" ("Why does my ResNet-50 overfit?");
- a fact in a *statement* ("Training BERT-base on 10k samples.") replaces what extraction put there;
- a field the user edited by hand is replaced only by a *first-person statement* ("My GPU has 12 GB
  now", "I switched to JAX"): that is the user stating a new value explicitly. The field then counts
  as extracted again. A field emptied by hand stays empty until such a statement;
- two different values of one field in one sentence ("ResNet or ViT?") are a comparison, not a
  fact, and are skipped; "from X to Y" keeps Y.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assistant.chat.setup_vocab import (
    ARCHITECTURES,
    BATCH,
    CHOICE_FIELDS,
    CLASSES,
    COMPARISON,
    COUNT_WORDS,
    CPU_ONLY,
    DATA,
    DATA_AFTER,
    FIRST_PERSON,
    FRAMEWORKS,
    FROM_TO,
    GPUS,
    MEMORY,
    MEMORY_AFTER,
    MEMORY_BEFORE,
    POSSESSIVE,
    PRECISIONS,
    SIZED_MODEL,
)

# The card's fields, in the order they are shown and written into prompts: (key, label).
FIELDS: tuple[tuple[str, str], ...] = (
    ("model", "Model"),
    ("data", "Data"),
    ("hardware", "Hardware"),
    ("memory", "Memory"),
    ("framework", "Framework"),
    ("batch_size", "Batch size"),
    ("precision", "Precision"),
    ("run", "Training run"),
)
KEYS = tuple(k for k, _ in FIELDS)
LABELS = dict(FIELDS)
EDITED = "_edited"  # the fields whose value (or emptiness) the user set by hand
MAX_VALUE_CHARS = 200  # one field's text, whoever wrote it


# --------------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    value: str
    strength: int  # 1: in a question, 2: in a statement, 3: in a first-person statement


Hit = tuple[int, int, str]  # (start, end, canonical value) in a sentence


def _canonical(m: re.Match[str], name: str) -> str:
    groups = m.groupdict()
    v = (groups.get("v") or "").strip()
    ti = (groups.get("ti") or "").strip()
    if not name:
        return v.upper()  # a GPU named by its model alone: A100, T4
    if name in {"GPT-", "RTX ", "GTX ", "RTX A", "Radeon RX ", "AMD MI", "Apple M"}:
        out = name + v.upper()
    elif re.fullmatch(r"v\d", v, re.I):
        out = f"{name}v{v[1]}"  # YOLOv8, MobileNetv2
    elif v:
        out = f"{name}-{v.lower() if v.isalpha() and len(v) > 2 else v.upper()}"
    else:
        out = name
    ti = ti.capitalize() if ti.lower() in {"ti", "super", "pro", "max", "ultra"} else ti.upper()
    return f"{out} {ti}" if ti else out


def _vocab_hits(text: str, vocab: list[tuple[str, str]]) -> list[Hit]:
    hits: list[Hit] = []
    for pattern, name in vocab:
        for m in re.finditer(rf"(?<![\w-])(?:{pattern})s?(?![\w-])", text, re.I):
            if any(a < m.end() and m.start() < b for a, b, _ in hits):
                continue  # inside a longer name already found ("PyTorch Lightning", "DistilBERT")
            hits.append((m.start(), m.end(), _canonical(m, name)))
    return sorted(hits)


def _sized(name: str, size: str, before: bool) -> str:
    size = size.replace(" ", "").upper()
    return f"{size} {name}" if before else f"{name} {size}"


def _models(s: str) -> list[Hit]:
    hits = []
    for a, b, name in _vocab_hits(s, ARCHITECTURES):
        before = re.search(r"(\d+(?:\.\d+)?\s?[BM])(?:-parameter|\s+param(?:eter)?s?)?\s+$", s[:a])
        after = re.match(r"[\s-]?(\d+(?:\.\d+)?[BM])\b", s[b:])
        size = before or after
        hits.append((a, b, _sized(name, size.group(1), before=bool(before)) if size else name))
    for m in re.finditer(SIZED_MODEL, s, re.I):
        if not any(a <= m.end() and m.start() <= b for a, b, _ in hits):
            hits.append((m.start(), m.end(), f"{m.group('size').replace(' ', '').upper()}-parameter model"))
    return sorted(hits)


def _hardware(s: str) -> list[Hit]:
    hits = []
    for a, b, name in _vocab_hits(s, GPUS):
        count = re.search(r"(\d+|single|one|two|dual|three|four|eight)\s?(?:x|×)?\s*$", s[:a], re.I)
        n = count and (COUNT_WORDS.get(count.group(1).lower()) or int(count.group(1)))
        plural = re.match(r"s\b", s[b : b + 2])
        if not n and plural:
            n = None
        hits.append((a, b, f"{n}× {name}" if n and n > 1 else name))
    for m in re.finditer(CPU_ONLY, s, re.I):
        hits.append((m.start(), m.end(), "CPU only"))
    if not hits and (m := re.search(r"\b(\d+|two|four|eight)\s+gpus\b", s, re.I)):
        n = COUNT_WORDS.get(m.group(1).lower()) or int(m.group(1))
        hits.append((m.start(), m.end(), f"{n} GPUs"))
    return sorted(hits)


def _memory(s: str, gpu_spans: list[Hit]) -> list[Hit]:
    hits = []
    for m in MEMORY.finditer(s):
        after, before = m.group("after"), s[: m.start()]
        if DATA_AFTER.match(after):
            continue
        kind = MEMORY_AFTER.match(after)
        near_gpu = any(0 <= m.start() - b <= 12 or 0 <= a - m.end("unit") <= 3 for a, b, _ in gpu_spans)
        if not (kind or MEMORY_BEFORE.search(before) or near_gpu):
            continue
        said = MEMORY_BEFORE.search(before)
        word = (kind.group(1) if kind else "gpu" if near_gpu or not said else said.group(1)).lower()
        what = "RAM" if word == "ram" and "gpu" not in before[-20:].lower() else "GPU memory"
        if word == "memory" and re.search(r"(system|cpu|host)\s*$", before, re.I):
            what = "RAM"
        if re.match(r"\s+(?:of\s+)?unified", after, re.I):
            what = "unified memory"
        unit = m.group("unit").upper().replace("GIB", "GB")
        unit = "GB" if unit == "G" else unit
        end = m.end("unit") + (kind.end() if kind else 0)
        hits.append((m.start(), end, f"{m.group('n')} {unit} {what}"))
    return hits


def _data(s: str, taken: list[tuple[int, int]]) -> list[Hit]:
    hits = []
    for m in DATA.finditer(s):
        if any(a < m.end() and m.start() < b for a, b in taken):
            continue
        n = m.group("n") or m.group("n2") or m.group("gb")
        noun = m.group("noun") or m.group("noun2") or m.group("noun3")
        if m.group("n") and re.fullmatch(r"\d", n.strip()):
            continue  # "2 images" is an example, not a data set
        text = m.group(0) if m.group("gb") or m.group("n2") else f"{n.strip()} {noun.lower()}"
        hits.append((m.start(), m.end(), re.sub(r"\s+", " ", text)))
    for m in CLASSES.finditer(s):
        hits.append((m.start(), m.end(), f"{m.group(1)} {m.group(2).lower()}"))
    return hits


def _batch(s: str) -> list[Hit]:
    return [(m.start(), m.end(), m.group("n") or m.group("n2")) for m in BATCH.finditer(s)]


def sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?;])\s+|\n+", text)
    return [p.strip() for p in parts if p.strip()]


def _pick(hits: list[Hit], sentence: str, join: bool) -> str | None:
    values = list(dict.fromkeys(v for _, _, v in hits))
    if not values:
        return None
    if len(values) > 1 and FROM_TO.search(sentence):
        return values[-1]  # "switched from TensorFlow to PyTorch"
    if len(values) == 1 or join and not COMPARISON.search(sentence):
        return ", ".join(values) if join else values[0]
    if COMPARISON.search(sentence):
        return None  # "ResNet or ViT?": a comparison, not a fact
    return values[0]


def extract(message: str) -> dict[str, Fact]:
    """The facts a message states, per field: the strongest sentence's value (the first on a tie)."""
    out: dict[str, Fact] = {}
    for sentence in sentences(message):
        question = sentence.rstrip().endswith("?")
        strength = 1 if question else 3 if FIRST_PERSON.search(sentence) else 2
        batch = _batch(sentence)
        hardware = _hardware(sentence)
        frameworks = _vocab_hits(sentence, FRAMEWORKS)
        models = [h for h in _models(sentence) if not any(a < h[1] and h[0] < b for a, b, _ in frameworks)]
        memory = _memory(sentence, hardware)
        taken = [(a, b) for a, b, _ in batch + memory]
        found = {
            "model": (models, False),
            "data": (_data(sentence, taken), True),
            "hardware": (hardware, False),
            "memory": (memory, True),
            "framework": (frameworks, True),
            "batch_size": (batch, False),
            "precision": (_vocab_hits(sentence, PRECISIONS), True),
        }
        for key, (hits, join) in found.items():
            if question and key in CHOICE_FIELDS:  # hypothetical unless it is "my …"
                hits = [h for h in hits if POSSESSIVE.search(sentence[: h[0]])]
            value = _pick(hits, sentence, join)
            if value and (key not in out or strength > out[key].strength):
                out[key] = Fact(value[:MAX_VALUE_CHARS], strength)
    return out


# --------------------------------------------------------------------------------------------------
# The card
# --------------------------------------------------------------------------------------------------


def _edited(card: dict[str, Any]) -> set[str]:
    return {k for k in card.get(EDITED) or [] if k in KEYS}


def _with_edited(card: dict[str, Any], edited: set[str]) -> dict[str, Any]:
    out = {k: card[k] for k in KEYS if card.get(k)}
    if edited:
        out[EDITED] = sorted(edited)
    return out


def normalise(card: dict[str, Any] | None) -> dict[str, Any]:
    """A card as stored: known fields with one-line text of bounded length, and the edited list."""
    card = card or {}
    clean = {k: _one_line(card.get(k)) for k in KEYS}
    return _with_edited({k: v for k, v in clean.items() if v}, _edited(card))


def _one_line(value: Any) -> str:
    return re.sub(r"\s+", " ", str(value or "")).strip()[:MAX_VALUE_CHARS]


def merge(card: dict[str, Any] | None, facts: dict[str, Fact]) -> dict[str, Any]:
    """The card after a message's facts (rules in the module docstring)."""
    out = normalise(card)
    edited = _edited(out)
    for key, fact in facts.items():
        if key in edited:
            if fact.strength < 3:
                continue
            edited.discard(key)
        elif out.get(key) and fact.strength < 2:
            continue
        out[key] = fact.value
    return _with_edited(out, edited)


def update_card(card: dict[str, Any] | None, message: str) -> dict[str, Any]:
    """The card after the user's message (idempotent: the same message again changes nothing)."""
    return merge(card, extract(message))


def edit_card(card: dict[str, Any] | None, values: dict[str, Any]) -> dict[str, Any]:
    """The card after the user typed `values` in the panel: every field whose text changed (emptied
    included) is marked edited, so extraction leaves it alone (see the module docstring)."""
    out = normalise(card)
    edited = _edited(out)
    for key in KEYS:
        if key not in values:
            continue
        new = _one_line(values[key])
        if new != out.get(key, ""):
            edited.add(key)
            out[key] = new
    return _with_edited(out, edited)


def card_with_run(card: dict[str, Any] | None, name: str, findings_summary: str) -> dict[str, Any]:
    """The card with an attached training run (its file name and a one-line summary of what its
    curves show): attaching a run is explicit, so it replaces the field even if edited by hand."""
    out = normalise(card)
    edited = _edited(out) - {"run"}
    summary = _one_line(f"{name}: {findings_summary}" if name else findings_summary)
    out["run"] = summary
    return _with_edited(out, edited)


def card_text(card: dict[str, Any] | None, max_tokens: int, count: Callable[[str], int]) -> str:
    """The card as one line for prompts and queries ("Model: ResNet-50; Memory: 6 GB GPU memory"),
    fields in FIELDS order, cut to `max_tokens` (later fields dropped first). "" for no card."""
    card = normalise(card)
    parts = [f"{LABELS[k]}: {card[k]}" for k in KEYS if card.get(k)]
    while parts and count("; ".join(parts)) > max_tokens:
        if len(parts) > 1:
            parts.pop()
        else:
            words = parts[0].split()
            parts = [" ".join(words[: max(1, len(words) * 3 // 4)])] if len(words) > 1 else []
    return "; ".join(parts)
