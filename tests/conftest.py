"""Shared fixtures. The whole suite runs with non-loopback sockets blocked (see pyproject addopts)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.settings import PROJECT_DIR, Settings

CORPUS = PROJECT_DIR / "corpus"


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory):
    """The real MiniLM, memoised per text: many tests ingest the same corpus into fresh stores."""
    import numpy as np

    from assistant.knowledge.embedder import Embedder

    class MemoEmbedder(Embedder):
        memo: dict[str, np.ndarray] = {}

        def embed(self, texts, progress=False):
            missing = list(dict.fromkeys(t for t in texts if t not in self.memo))
            if missing:
                self.memo.update(zip(missing, super().embed(missing), strict=True))
            return np.stack([self.memo[t] for t in texts]) if texts else super().embed([])

    return MemoEmbedder("all-MiniLM-L6-v2", "cpu", stamp_dir=tmp_path_factory.mktemp("stamps"))


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", corpus_paths=[CORPUS])


@pytest.fixture()
def corpus_copy(tmp_path: Path) -> Path:
    """A private, writable copy of the corpus for tests that edit files."""
    dest = tmp_path / "corpus"
    shutil.copytree(CORPUS, dest)
    for p in dest.iterdir():
        p.chmod(0o644)
    return dest


@pytest.fixture()
def make_assistant(embedder):
    from assistant.core import Assistant

    def make(settings: Settings, **kw):
        return Assistant(settings, embedder=embedder, **kw)

    return make


@pytest.fixture(scope="session")
def indexed(tmp_path_factory: pytest.TempPathFactory, embedder):
    """One Assistant over the shipped corpus, ingested once for the read-only tests."""
    from assistant.core import Assistant

    s = Settings(data_dir=tmp_path_factory.mktemp("indexed"), corpus_paths=[CORPUS])
    a = Assistant(s, embedder=embedder)
    a.ingest()
    return a


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama with a word-level tokenizer trained on the corpus, saved
    as an ordinary transformers folder, so the engine loads it through its real loading path."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        (p.read_text(encoding="utf-8") for p in CORPUS.iterdir()),
        trainers.BpeTrainer(
            vocab_size=600,
            special_tokens=specials,
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir, tmp_path_factory):
    from assistant.llm.engine import LLMEngine

    s = Settings(data_dir=tmp_path_factory.mktemp("llm"), llm_model=str(tiny_model_dir), llm_dtype="float32")
    return LLMEngine(s)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--count", type=int, default=1, help="run each test marked `repeatable` this many times")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "repeatable: run `--count` times (flakiness checks)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    count = metafunc.config.getoption("count")
    if count > 1 and metafunc.definition.get_closest_marker("repeatable"):
        metafunc.fixturenames.append("repetition")
        metafunc.parametrize("repetition", range(count))


@pytest.fixture(scope="session")
def serial_engine(tiny_model_dir, tmp_path_factory):
    """The tiny model generating one answer at a time (llm_batching=off): the path that calls
    model.generate() directly."""
    from assistant.llm.engine import LLMEngine

    s = Settings(
        data_dir=tmp_path_factory.mktemp("llm-serial"),
        llm_model=str(tiny_model_dir),
        llm_dtype="float32",
        llm_batching="off",
    )
    return LLMEngine(s)
