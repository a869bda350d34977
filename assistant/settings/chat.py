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
    concept_similarity: float = Field(
        0.4,
        ge=0,
        le=1,
        description="A question this close (cosine) to a problem's symptoms in prompts/concepts.txt is also "
        "searched in the documents' words for that problem (symptom questions reach the concept passage).",
    )
    expansion_weight: float = Field(
        0.97,
        gt=0,
        le=1,
        description="The search in a problem's words ranks its best unit at this share of the question's "
        "own best relevance (just below it): it adds the concept passage without displacing what the "
        "question names.",
    )
    covered_relevance: float = Field(
        0.6,
        ge=0,
        le=1,
        description="A source this relevant covers the question whatever prompts/concepts.txt says (your "
        "own documents on other subjects; questions in the documents' words).",
    )
    abstain_concept_floor: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Abstain when a question is no closer than this to any problem in prompts/concepts.txt "
        "(read from the tuning half of tests/goldsets/realistic; README, Answers).",
    )
    abstain_specific_below: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Abstain when a question quotes a library's own error, option, file or version and is "
        "no closer than this to a problem in prompts/concepts.txt: the documents give general advice.",
    )
    answer_style: Literal["quoted", "free"] = Field(
        "quoted",
        description="`quoted`: the passages' own sentences closest to the question, cited, then one "
        "sentence by the model, shown only if checked (the packaged 0.5B model adds causes of its own when "
        "it writes more). `free`: the model writes the answer, each sentence checked before it is shown "
        "(README, Answers).",
    )
    quote_count: int = Field(4, ge=1, le=12, description="Most passage sentences quoted (`quoted` style).")
    quote_margin: float = Field(
        0.15, ge=0, description="Quote only sentences within this cosine of the closest one to the question."
    )
    quoted_sentence_tokens: int = Field(
        80, ge=8, description="Longest sentence the model may add to the quotes, in tokens (`quoted` style)."
    )
    entail_llm: bool = Field(
        True,
        description="The check of each written sentence asks the LLM whether its passage states it (one "
        "forward pass, no generation); off: the check reads the words alone (faster, less exact).",
    )
    entail_threshold: float = Field(
        0.48,
        ge=0,
        le=1,
        description="A written sentence is shown when the check's probability that its source states it "
        "reaches this (fitted on the tuning half of tests/goldsets/entailment; `assistant eval checker`).",
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
