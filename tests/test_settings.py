"""One typed settings object: defaults, environment, config file, `assistant config`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.settings import Settings


def test_every_setting_is_documented():
    for name, field in Settings.model_fields.items():
        assert field.description and len(field.description) > 15, name


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("ASSISTANT_RETRIEVAL_K", "7")
    monkeypatch.setenv("ASSISTANT_CORPUS_PATHS", '["a", "b"]')
    s = Settings()
    assert s.retrieval_k == 7 and s.corpus_paths == [Path("a"), Path("b")]


def test_config_file_overrides_defaults_and_environment_beats_it(monkeypatch, tmp_path):
    cfg = tmp_path / "assistant.toml"
    cfg.write_text('retrieval_k = 9\nbm25_weight = 0.5\nchroma_url = "http://127.0.0.1:8123"\n')
    monkeypatch.setenv("ASSISTANT_CONFIG", str(cfg))
    monkeypatch.setenv("ASSISTANT_BM25_WEIGHT", "0.1")
    s = Settings()
    assert s.retrieval_k == 9 and s.bm25_weight == 0.1 and s.server_mode


def test_config_file_in_working_directory_is_picked_up(monkeypatch, tmp_path):
    (tmp_path / "assistant.toml").write_text("candidates = 11\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ASSISTANT_CONFIG", raising=False)
    assert Settings().candidates == 11


def test_invalid_values_are_rejected(monkeypatch):
    monkeypatch.setenv("ASSISTANT_RETRIEVAL_K", "0")
    with pytest.raises(ValueError, match="retrieval_k"):
        Settings()


def test_assistant_config_prints_effective_settings(monkeypatch, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("retrieval_k = 4\n")
    result = CliRunner().invoke(app, ["--config", str(cfg), "config"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert str(cfg) in result.output
    line = next(ln for ln in result.output.splitlines() if "retrieval_k" in ln)
    assert "4" in line and "Results returned by a search" in line
    monkeypatch.delenv("ASSISTANT_CONFIG", raising=False)
