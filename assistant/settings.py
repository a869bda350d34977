"""The one place defaults live.

Every setting can be overridden by an environment variable `ASSISTANT_<NAME>` (lists as JSON, e.g.
`ASSISTANT_CORPUS_PATHS='["corpus", "~/notes"]'`) or by a TOML config file: `ASSISTANT_CONFIG=path`,
else `assistant.toml` in the working directory if present. Environment beats file beats default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PACKAGE_DIR = Path(__file__).resolve().parent
# In a source checkout (the way the README installs it) corpus/, prompts/ and tests/ sit beside the package.
PROJECT_DIR = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").exists() else Path.cwd()


def config_file() -> Path | None:
    """The TOML file settings are read from, if any."""
    explicit = os.environ.get("ASSISTANT_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    local = Path.cwd() / "assistant.toml"
    return local if local.exists() else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", extra="ignore", validate_default=True)

    # --- storage -------------------------------------------------------------------------------
    data_dir: Path = Field(
        PROJECT_DIR / "data",
        description="Where the Chroma store, converted models, caches and uploads live.",
    )
    corpus_paths: list[Path] = Field(
        default_factory=lambda: [PROJECT_DIR / "corpus"],
        description="Files or folders indexed by `assistant ingest` when no paths are given.",
    )
    collection: str = Field("dl_qa", description="Name of the Chroma collection holding the chunks.")
    chroma_mode: Literal["embedded", "server"] = Field(
        "embedded",
        description="`embedded`: a PersistentClient under data_dir. `server`: a Chroma server at chroma_url.",
    )
    chroma_url: str | None = Field(
        None,
        description="URL of a Chroma server (e.g. http://127.0.0.1:8000). Setting it selects server mode.",
    )

    # --- embedder ------------------------------------------------------------------------------
    embedder: str = Field(
        "all-MiniLM-L6-v2",
        description="Sentence-transformers model: `all-MiniLM-L6-v2` (packaged, hash-checked), a local "
        "folder, or a model id already in the Hugging Face cache.",
    )
    embedder_device: str = Field("auto", description="`auto` (cuda if present, else cpu), `cpu`, `cuda`, …")
    embed_batch_size: int = Field(32, ge=1, description="Texts embedded per batch during ingest.")

    # --- chunking ------------------------------------------------------------------------------
    chunk_max_tokens: int = Field(
        256,
        ge=32,
        description="Most word pieces in one embedded chunk; clamped to the embedder's input window so "
        "no text is silently cut off.",
    )
    chunk_overlap_tokens: int = Field(
        24, ge=0, description="Word pieces shared by consecutive pieces of a long answer."
    )
    max_file_mb: float = Field(20.0, gt=0, description="Files larger than this are skipped at ingest.")

    # --- retrieval -----------------------------------------------------------------------------
    retrieval_k: int = Field(5, ge=1, description="Results returned by a search.")
    candidates: int = Field(
        60, ge=1, description="Vectors (and BM25 pieces) fetched before fusion; a unit has several vectors."
    )
    vector_weight: float = Field(
        0.8, ge=0, description="Weight of the best cosine similarity among a unit's vectors in the score."
    )
    bm25_weight: float = Field(
        0.2, ge=0, description="Weight of the unit's BM25 score, divided by the query's best, in the score."
    )
    bm25_saturation: float = Field(
        5.0, gt=0, description="BM25 score counted as full evidence in a result's absolute `relevance`."
    )
    exact_search_max_records: int = Field(
        100_000,
        ge=0,
        description="Up to this many records, vector search is exact (a matrix product over vectors read "
        "with each index version) instead of Chroma's approximate HNSW, which can miss a just-added "
        "vector and, in another process, lags behind writes. Memory: 4 bytes per dimension per record "
        "(150 MB at the limit with MiniLM's 384); 0: HNSW only.",
    )

    # --- language model ------------------------------------------------------------------------
    llm_model: str = Field(
        "auto",
        description="`auto` (configured > on CUDA a cached Qwen2.5-3B/1.5B-Instruct > the packaged model), "
        "a preset from `assistant models`, a Hugging Face id in the local cache, a folder, or a .gguf file.",
    )
    llm_device: str = Field("auto", description="`auto` (cuda if present, else cpu), `cpu` or `cuda`.")
    llm_dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="`auto`: bf16 on CUDA (fp16 without bf16), bf16 on CPUs with bf16, else fp32."
    )
    llm_load_in_4bit: bool = Field(False, description="Load the LLM in 4-bit (bitsandbytes; CUDA only).")
    llm_quantize: Literal["auto", "int8", "off"] = Field(
        "auto",
        description="Int8 weights for CPU inference (~3x faster decode than fp32). `auto`: int8 on a CPU, "
        "except one with AMX bf16 (bf16 stays); never on a GPU (use llm_load_in_4bit there). `int8`: "
        "always on CPU (computes in float32). `off`: weights as loaded.",
    )
    llm_max_memory: str | None = Field(
        None, description="Cap on GPU memory for the LLM (e.g. `6GiB`); the rest is offloaded to CPU."
    )
    llm_max_cpu_memory: str = Field("32GiB", description="CPU memory accelerate may use with llm_max_memory.")
    llm_threads: int | None = Field(None, ge=1, description="CPU threads for torch (default: torch's own).")
    llm_fast_path: Literal["auto", "on", "off"] = Field(
        "auto", description="Static KV cache + compiled decode step; `auto` turns it on on CUDA."
    )
    llm_context_window: int = Field(
        0, ge=0, description="Cap on the context window in tokens; 0 uses the model's own."
    )
    llm_max_new_tokens: int = Field(256, ge=1, description="Longest answer, in tokens.")
    llm_temperature: float = Field(0.0, ge=0, le=2, description="0 = greedy (reproducible answers).")
    llm_top_p: float = Field(0.9, gt=0, le=1, description="Nucleus sampling when temperature > 0.")
    llm_repetition_penalty: float = Field(1.05, ge=1, description="Discourages small models from looping.")

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

    # --- web app -----------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address the web app listens on (0.0.0.0 inside a container).")
    port: int = Field(7860, ge=1, le=65535, description="Port of the web app.")
    example_questions: int = Field(6, ge=0, description="Example questions drawn from the corpus in the UI.")

    # --- serving many users: batching in-process, or a remote engine ----------------------------------
    llm_batching: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Continuous batching: concurrent answers share the one model step by step. `auto`: on "
        "where the model and device support it (the log and `doctor` say which); `off`: one at a time.",
    )
    llm_batch_size: int = Field(
        8, ge=1, description="Most answers generated at once with batching; later ones wait their turn."
    )
    llm_kv_cache_tokens: int = Field(
        0,
        ge=0,
        description="KV cache of the batch, in tokens across all answers; 0 = llm_batch_size × the context "
        "window (at most 4096 each), capped on a GPU to what llm_max_memory leaves.",
    )
    llm_prefix_cache: bool = Field(
        True,
        description="With batching: an answer whose prompt starts like one already computed (the system "
        "prompt; the same sources for a similar question; the same question again) reuses that part of "
        "the KV cache instead of computing it again. Finished answers' blocks stay reusable until the "
        "space is needed.",
    )
    llm_url: str | None = Field(
        None,
        description="An OpenAI-compatible server (vLLM, TGI, llama.cpp, Ollama, `transformers serve`), e.g. "
        "http://gpu-box:8000/v1. Set: rewrites and answers go there and no model is loaded here.",
    )
    llm_api_key: SecretStr | None = Field(None, description="API key for llm_url (never logged).")
    llm_remote_model: str | None = Field(
        None, description="Model name at llm_url; unset = the only model the server lists."
    )
    llm_remote_tokenizer: str | None = Field(
        None,
        description="A folder or locally cached id with the remote model's tokenizer, for exact token "
        "budgets; unset = llm_remote_model if on disk, else an estimate of 1 token per 3 bytes.",
    )
    llm_remote_timeout: float = Field(
        60.0, gt=0, description="Seconds to wait for the model server before saying it did not answer."
    )

    # --- saved conversations and accounts (issue 11) -------------------------------------------------
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the database holding accounts, conversations and feedback, e.g. "
        "postgresql+psycopg://user:pw@db/assistant for a shared deployment; unset = the SQLite file "
        "data_dir/assistant.db. The schema is upgraded to the current version at startup.",
    )
    auth: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Logins and API keys. `auto`: on when any account exists or the app listens on a "
        "non-loopback host; `on`: always; `off`: one local user, no login (only behind your own gate).",
    )
    session_ttl_hours: float = Field(
        168.0, gt=0, description="A browser login lasts this long, then asks for the password again."
    )
    login_free_failures: int = Field(
        5,
        ge=1,
        description="Failed logins for one name (or from one client) before each next attempt is delayed.",
    )
    login_delay_s: float = Field(
        1.0,
        gt=0,
        description="First delay after the free failures; it doubles with each further failure "
        "(1, 2, 4, … s), up to login_max_delay_s. Attempts during a delay are refused unchecked.",
    )
    login_max_delay_s: float = Field(
        900.0, gt=0, description="Longest delay (lockout) between login attempts for one name or client."
    )
    login_failure_window_minutes: float = Field(
        15.0, gt=0, description="Failures older than this (counted from the last one) are forgotten."
    )
    api_max_body_kb: int = Field(
        1024, ge=1, description="Largest request body the OpenAI-compatible API accepts (413 beyond)."
    )
    api_sources_footer: bool = Field(
        False,
        description='Append a Markdown "Sources" footer to API answers by default (for clients that show '
        "only text); a request's `sources_footer` overrides it. The sources are always in `sources`.",
    )

    # --- your own training run: `assistant diagnose` (issue 12) ------------------------------------
    run_max_mb: float = Field(
        200.0,
        gt=0,
        description="Largest training log `diagnose` reads, in MB (lines are streamed: memory stays "
        "bounded either way; this caps the time a huge file takes).",
    )

    # --- the problem card: the user's setup kept per conversation (issue 12 §4) -------------------
    problem_max_tokens: int = Field(
        96,
        ge=16,
        le=512,
        description="Most tokens (embedder's tokenizer) of the problem card's text added to the rewrite "
        "and answer prompts and to the card's search query; later fields are dropped first.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path is not None:
            if not path.exists():
                raise FileNotFoundError(f"config file {path} (from ASSISTANT_CONFIG) does not exist")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def server_mode(self) -> bool:
        return self.chroma_mode == "server" or bool(self.chroma_url)

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def database_file(self) -> Path:
        return self.data_dir / "assistant.db"

    @property
    def feedback_file(self) -> Path:
        return self.data_dir / "feedback.jsonl"

    def describe(self) -> list[tuple[str, object, str]]:
        """(name, effective value, description) for every setting, for `assistant config`."""
        return [
            (name, getattr(self, name), field.description or "")
            for name, field in type(self).model_fields.items()
        ]
