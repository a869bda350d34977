"""Sources are data, never instructions.

Two layers. By structure: each source reaches the model between `<source …>` and `</source>` tags
(prompts/source.txt) that the system prompt names as quoted reference text, and a document cannot
close or open those tags itself (`fence`). By filter (`withhold`): sentences that address the
assistant are withheld from the prompt. What the filter catches, precisely:

- a sentence with an override verb *and* an instruction word, in English, German, French, Spanish,
  Italian, Portuguese, Russian, Chinese or Japanese ("disregard the instructions above", "vergiss
  alle Regeln", "忽略之前的所有指令");
- a sentence that re-assigns the assistant's role ("you are now …", "from now on …", "act as …",
  "pretend to be …", "tu es maintenant …", "ahora eres …", "你现在是 …");
- a sentence that dictates the reply ("reply only with …", "respond with the word …", "say exactly …");
- chat-template markers (`<|im_start|>`, `[INST]`, `<<SYS>>`, a line starting `system:`).

Not caught: instructions phrased without those words (e.g. a polite request to "talk like a pirate"),
other languages, text split across sentences or encoded. Those still arrive inside the source tags,
under a system prompt that says to ignore instructions there; a small model may follow them anyway.
"""

from __future__ import annotations

import re

_OVERRIDE = (
    r"(?:\b(?:ignor\w*|disregard\w*|forg[eo]t\w*|overrid\w*|bypass\w*|vergiss\w*|missacht\w*|"
    r"oubli\w*|olvid\w*|dimentic\w*|esque[cç]\w*|игнорир\w*|забуд\w*|забыть)|忽略|忽视|无视|忘记|忘掉|無視)"
)
_ORDERS = (
    r"(?:\b(?:instruction\w*|prompts?|rules?|directions?|guidelines?|system message|orders|"
    r"anweisung\w*|befehl\w*|regeln|vorgaben|consignes?|règles?|instrucci\w*|reglas?|indicaciones|"
    r"istruzion\w*|regole|instru[cç]\w*|regras?|инструкц\w*|правил\w*|указани\w*)|"
    r"\beverything (?:above|before|said|you (?:were|have been) told)|指令|指示|说明|規則|规则|提示|命令)"
)
_ROLE = (
    r"\byou are now\b|\bfrom now on\b|\bact as (?:a|an|if)\b|\bpretend (?:to be|you are)\b|"
    r"\byour new (?:role|task|instructions?|goal)\b|\bdu bist (?:jetzt|nun|ab sofort)\b|"
    r"\btu es (?:maintenant|désormais)\b|\bahora eres\b|\bora sei\b|\bagora você é\b|\bтеперь ты\b|"
    r"你现在是|从现在开始|今から"
)
_REPLY = (
    r"\b(?:reply|respond|answer|output|say|print|write)\b[^.!?\n]{0,12}\b(?:only|exactly|just)\b"
    r"[^.!?\n]{0,12}\b(?:with|the word|the phrase)\b|\b(?:only|just) (?:reply|respond|say|output)\b|"
    r"\b(?:reply|respond) with the (?:word|phrase|text)\b"
)
_TEMPLATE = re.compile(r"<\|[a-z_]{2,20}\|>|\[/?INST\]|<</?SYS>>|^\s*(?:system|assistant)\s*:", re.I | re.M)
_SENTENCE = re.compile(r"[^.!?。！？\n]+[.!?。！？]*")
_ADDRESSES_ASSISTANT = [
    (re.compile(_OVERRIDE, re.I), re.compile(_ORDERS, re.I)),
    (re.compile(_ROLE, re.I), None),
    (re.compile(_REPLY, re.I), None),
]
WITHHELD = "[instruction-like text removed]"


def _instruction_like(sentence: str) -> bool:
    return any(a.search(sentence) and (b is None or b.search(sentence)) for a, b in _ADDRESSES_ASSISTANT)


def withhold(text: str) -> str:
    """The text with every sentence that addresses the assistant replaced by a short notice."""

    def one(m: re.Match[str]) -> str:
        s = m.group(0)
        return s[: len(s) - len(s.lstrip())] + WITHHELD if _instruction_like(s) else s

    return _SENTENCE.sub(one, _TEMPLATE.sub(" ", text)).strip()


def fence(text: str) -> str:
    """A source cannot open or close the `<source>` tags it is quoted in."""
    return re.sub(r"<\s*(/?)\s*source\b", r"‹\1source", text, flags=re.I)


_PROMPT_MARKUP = re.compile(r"<\s*/?\s*source\b[^>]*>|" + _TEMPLATE.pattern, re.I | re.M)


def unwrap(text: str) -> str:
    """Model output without the prompt's own markup: a small model sometimes echoes a `<source n="1"
    title="…">` tag or a chat-template marker at the head of its reply; the user never sees them."""
    return re.sub(r"[ \t]{2,}", " ", _PROMPT_MARKUP.sub(" ", text))
