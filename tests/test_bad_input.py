"""Bad input gets a clear error and loses nothing: bad files are skipped and named, the index stays whole."""

from __future__ import annotations

import os

import pytest


def test_bad_files_are_skipped_by_name_and_the_rest_is_ingested(settings, make_assistant, corpus_copy):
    (corpus_copy / "weights.txt").write_bytes(b"\x00\x13\x37" * 100)
    (corpus_copy / "latin1.txt").write_bytes("Qu'est-ce qu'un r\xe9seau ?".encode("latin-1"))
    (corpus_copy / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (corpus_copy / "gone.md").symlink_to(corpus_copy / "does-not-exist.md")  # unreadable: dangling link
    (corpus_copy / "huge.txt").write_text("x " * 600_000)
    a = make_assistant(settings.model_copy(update={"max_file_mb": 1.0}))
    report = a.ingest([corpus_copy])
    skipped = dict(report.skipped)
    assert set(skipped) == {"weights.txt", "latin1.txt", "photo.png", "gone.md", "huge.txt"}
    assert "binary" in skipped["weights.txt"]
    assert "UTF-8" in skipped["latin1.txt"]
    assert "unsupported" in skipped["photo.png"]
    assert "unreadable" in skipped["gone.md"]
    assert "limit" in skipped["huge.txt"]
    assert len(report.added) == 4 and a.stats()["units"] == 36


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_is_skipped(settings, make_assistant, corpus_copy):
    secret = corpus_copy / "secret.md"
    secret.write_text("# Secret\n\nhidden")
    secret.chmod(0)
    report = make_assistant(settings).ingest([corpus_copy])
    assert [n for n, _ in report.skipped] == ["secret.md"]


def test_a_good_file_turned_bad_keeps_its_old_units(settings, make_assistant, corpus_copy):
    a = make_assistant(settings)
    a.ingest([corpus_copy])
    faq = corpus_copy / "deep-learning-projects-faq.md"
    faq.write_bytes(b"\xff\xfe\x00garbage")
    report = a.ingest([corpus_copy])
    assert [n for n, _ in report.skipped] == [faq.name]
    assert a.stats()["units"] == 36, "the last good version stays searchable"


def test_missing_corpus_path_is_a_clear_error_and_changes_nothing(
    settings, make_assistant, corpus_copy, tmp_path
):
    a = make_assistant(settings)
    a.ingest([corpus_copy])
    with pytest.raises(FileNotFoundError, match="corpus path does not exist: .*nowhere"):
        a.ingest([corpus_copy, tmp_path / "nowhere"])
    assert a.stats()["units"] == 36
