"""A real ingest killed with SIGKILL while it writes leaves every document whole, and the next ingest
repairs what it left. The killed process is the real CLI over the real embedded Chroma store."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from assistant.settings import PROJECT_DIR, Settings

N = 100  # units, 4 vectors each: a few hundred records to write per version


def _write_version(path: Path, tag: str) -> None:
    lines = ["# Knobs\n"]
    for i in range(N):
        lines.append(
            f"### {i + 1}. How do I tune knob {i} for {tag}?\n\nKnob {i} sets the {tag} rate of layer {i}. "
            f"Raise knob {i} slowly when the {tag} loss stalls.\n"
        )
    path.write_text("\n".join(lines), encoding="utf-8")


def _ingest(data_dir: Path, docs: Path) -> subprocess.Popen:
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(data_dir), "PYTHONPATH": str(PROJECT_DIR)}
    return subprocess.Popen(
        [sys.executable, "-m", "assistant", "ingest", str(docs)],
        env=env,
        cwd=PROJECT_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _last_write(data_dir: Path) -> int:
    """Sequence number of the store's last record write (add or delete). Opening the store changes
    neither this nor the records, unlike the file's size (freed pages get reused) or its mtime."""
    db = data_dir / "chroma" / "chroma.sqlite3"
    if not db.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)) as conn:
            return conn.execute("SELECT max(seq_id) FROM embeddings_queue").fetchone()[0] or 0
    except sqlite3.OperationalError:  # locked: the writer is committing
        return -1


def _reopen(settings: Settings, make_assistant):
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()  # read the files as they are now, as a new process would
    return make_assistant(settings)


def _visible(a) -> tuple[set[str], int]:
    """Versions (tags) of the knob units a reader sees, and how many units."""
    units = [u for u in a.retriever.units() if u["source"] == "knobs.md"]
    assert len({u["unit_id"] for u in units}) == len(units), "no duplicate units"
    return {u["title"].rsplit(" for ", 1)[-1].rstrip("?") for u in units}, len(units)


@pytest.mark.slow
def test_sigkill_during_a_real_ingest_never_mixes_versions(tmp_path, make_assistant):
    data, docs = tmp_path / "data", tmp_path / "docs"
    docs.mkdir()
    settings = Settings(data_dir=data)
    knobs = docs / "knobs.md"
    _write_version(knobs, "v0")
    assert _reopen(settings, make_assistant).ingest([docs]).added == ["knobs.md"]
    rng = random.Random(int(time.time()))
    visible, killed_writing, max_delay, log = "v0", 0, 2.0, []
    for attempt in range(1, 9):
        tag = f"v{attempt}"
        _write_version(knobs, tag)
        _reopen(settings, make_assistant)  # this process holds nothing open while the other writes
        seq, proc = _last_write(data), _ingest(data, docs)
        while proc.poll() is None and _last_write(data) == seq:  # embedding: nothing written yet
            time.sleep(0.002)
        delay, start = rng.uniform(0, max_delay), time.perf_counter()
        while proc.poll() is None and time.perf_counter() - start < delay:
            time.sleep(0.002)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        elif time.perf_counter() - start > 0.01:  # it finished writing first: aim earlier next time
            max_delay = 0.8 * (time.perf_counter() - start)
        proc.wait(timeout=60)
        killed_writing += proc.returncode == -signal.SIGKILL  # it may have exited just before the signal
        a = _reopen(settings, make_assistant)
        tags, count = _visible(a)
        log.append(f"{tag}: +{delay:.2f} s, killed={proc.returncode == -signal.SIGKILL}, visible={tags}")
        assert len(tags) == 1 and tags <= {visible, tag}, f"mixed versions after a kill: {log}"
        assert count == N, log
        visible = tags.pop()
        if killed_writing == 3:
            break
    assert killed_writing >= 2, f"the kills should land while the ingest is still writing: {log}"

    # The next ingest repairs what the kills left and re-indexes the file if its last version never landed.
    report = a.ingest([docs])
    assert report.repaired >= 1 or visible == tag, log  # a kill after the clean-up leaves nothing to repair
    assert (report.unchanged if visible == tag else report.updated) == ["knobs.md"], (report, log)
    assert _visible(a) == ({tag}, N)
    assert a.store.count() == 4 * N, "no orphan records are left"
    assert a.stats()["files"] == 1 and a.store.repair() == 0
