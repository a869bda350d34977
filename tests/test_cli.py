"""The command line, run in-process: ingest, search --json, doctor, eval, bench, errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from assistant.cli import app
from assistant.measure.parse_bench import SHAPES


@pytest.fixture()
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ASSISTANT_CONFIG", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), env={"COLUMNS": "200"})

    return invoke


def test_ingest_search_and_doctor(run):
    first = run("ingest")
    assert first.exit_code == 0, first.output
    assert "4 added" in first.output and "36 units" in first.output
    assert "4 unchanged" in run("ingest").output

    result = run("search", "my gpu runs out of memory", "-k", "2", "--json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    assert len(hits) == 2 and hits[0]["title"].startswith("My model training takes too much RAM")
    assert {"unit_id", "source", "title", "text", "score"} <= set(hits[0])

    doctor = run("doctor")
    assert doctor.exit_code == 0, doctor.output
    for expected in ("torch", "chromadb", "HF_HUB_OFFLINE", "embedder.hash", "verified", "index.units", "36"):
        assert expected in doctor.output


def test_errors_are_one_clear_line(run, tmp_path):
    result = run("search", "   ")
    assert result.exit_code == 2 and "error: the query is empty" in result.output
    missing = run("ingest", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and "corpus path does not exist" in missing.output
    assert "Traceback" not in missing.output


def test_ingest_reports_skipped_files(run, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\x00\x01binary")
    result = run("ingest", str(bad))
    assert result.exit_code == 0
    assert "skipped bad.txt: binary file" in result.output


def test_eval_retrieval_prints_metrics(run):
    result = run("eval", "retrieval", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output[result.output.index("{") :])
    assert metrics["retrieval.jsonl"]["hit@1"] >= 0.92
    assert {"hit@1", "hit@3", "hit@5", "mrr", "misses"} <= set(metrics["retrieval_heldout.jsonl"])


def test_bench_retrieval_prints_figures(run):
    result = run("bench", "retrieval", "--synthetic", "300", "--repeat", "1", "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output[result.output.index("{") :])
    for part in ("corpus", "synthetic"):
        assert figures[part]["p50_ms"] > 0 and figures[part]["p95_ms"] >= figures[part]["p50_ms"]
    assert figures["synthetic"]["units"] == 300
    assert figures["corpus"]["ingest_units_per_s"] > 0


def test_bench_parse_prints_a_time_per_line_shape(run):
    result = run("bench", "parse", "--small", "2000", "--large", "4000", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output[result.output.index("[") :])
    assert [r["shape"] for r in rows] == list(SHAPES) and all(
        r["small_s"] > 0 and r["large_s"] > 0 for r in rows
    )
    table = run("bench", "parse", "--small", "2000", "--large", "4000")
    assert table.exit_code == 0 and "4,000" in table.output and "braces that never close" in table.output
