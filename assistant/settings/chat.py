"""How a conversational turn is put together: sources, history, follow-ups, citations, the problem card."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from assistant.settings.paths import PROJECT_DIR


class ChatSettings(BaseModel):
    # --- conversation and answers ----------------------------------------------------------------
    prompts_dir: Path = Field(
        PROJECT_DIR / "prompts",
        description="Prompt text files (system, answer, rewrite, not_covered, source).",
    )
    sources_k: int = Field(3, ge=1, description="Most sources put in front of the model for one answer.")
    min_relevance: float = Field(
        0.401,
        ge=0,
        description="Abstain (answer with prompts/not_covered.txt, no LLM call) when the best source's "
        "relevance is below this. Set midway between the lowest answerable and the highest unanswerable "
        "question below it on the tuning goldsets; `assistant eval retrieval` prints the distributions "
        "(README, Answers).",
    )
    source_relevance_margin: float = Field(
        0.15, ge=0, description="Drop sources whose relevance trails the best one by more than this."
    )
    context_max_tokens: int = Field(
        1400, ge=128, description="Most prompt tokens spent on sources (a cap for a fast first token)."
    )
    history_max_tokens: int = Field(
        600, ge=0, description="Most tokens of past turns sent to the model; the most recent turns are kept."
    )
    question_max_tokens: int = Field(
        400, ge=16, description="Longer messages are cut (head and tail kept) with a notice."
    )
    rewrite_follow_ups: Literal["auto", "always", "never"] = Field(
        "auto",
        description="Rewrite a follow-up into a standalone question with the LLM. `auto`: when the message "
        "refers back in words (pronouns, 'the second one') or the conversation makes it findable (see "
        "follow_up_margin); a first turn or a standalone question costs no LLM call.",
    )
    follow_up_margin: float = Field(
        0.15,
        ge=0.0,
        le=1.0,
        description="A message is a follow-up when searching it joined to the previous question scores this "
        "much higher (best relevance) than searching it alone. Read from the older goldsets: pronoun "
        "follow-ups gain >= 0.18, unrelated question pairs gain <= 0.11 at the 90th percentile.",
    )
    support_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="A source supports a sentence when their support reaches this; a cited sentence no "
        "source supports is reported unsupported. Support: the best of the cosine with one source sentence "
        "and (for 5+ content words) the share of them found in one source sentence. Calibrated by "
        "`assistant eval answers` (README, Answers).",
    )
    citation_margin: float = Field(
        0.15,
        ge=0,
        le=1,
        description="The model's own [n] stands when its source supports the sentence and trails the best "
        "source by at most this (support scores are noisy); otherwise the marker is re-pointed to the best.",
    )

    # --- the problem card: the user's setup kept per conversation (issue 12 §4) -------------------
    problem_max_tokens: int = Field(
        96,
        ge=16,
        le=512,
        description="Most tokens (embedder's tokenizer) of the problem card's text added to the rewrite "
        "and answer prompts and to the card's search query; later fields are dropped first.",
    )
