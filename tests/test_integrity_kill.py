"""A real ingest killed with SIGKILL while it writes leaves every document whole, and the next ingest
repairs what it left. The killed process is the real CLI over the real embedded Chroma store.

Where the kill lands is not left to a timer: the index names the points of a write
(`index.WRITE_POINTS`) and a process started with `ASSISTANT_TEST_KILL_AT=<point>` kills itself there.
(A timer cannot tell an ingest's own first write, the repair of what an earlier kill left, from the
new version's, so a kill "while writing" could land before the new version was started.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.knowledge.index import KILL_AT_ENV, WRITE_POINTS
from assistant.settings import PROJECT_DIR, Settings

N = 60  # units, 4 vectors each

# Before the switch record is written readers see the old version; from it on, the new one.
NEW_VISIBLE_FROM = WRITE_POINTS.index("switched")


def _write_version(path: Path, tag: str) -> None:
    lines = ["# Knobs\n"]
    for i in range(N):
        lines.append(
            f"### {i + 1}. How do I tune knob {i} for {tag}?\n\nKnob {i} sets the {tag} rate of layer {i}. "
            f"Raise knob {i} slowly when the {tag} loss stalls.\n"
        )
    path.write_text("\n".join(lines), encoding="utf-8")


def _ingest_killed_at(point: str, data_dir: Path, docs: Path) -> int:
    env = {
        **os.environ,
        "ASSISTANT_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(PROJECT_DIR),
        KILL_AT_ENV: point,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "assistant", "ingest", str(docs)],
        env=env,
        cwd=PROJECT_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    return proc.returncode


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
@pytest.mark.parametrize("point", [p for p in WRITE_POINTS if p != "repairing"])
def test_sigkill_at_each_point_of_a_write_never_mixes_versions(point, tmp_path, make_assistant):
    data, docs = tmp_path / "data", tmp_path / "docs"
    docs.mkdir()
    settings = Settings(data_dir=data)
    knobs = docs / "knobs.md"
    _write_version(knobs, "v0")
    assert _reopen(settings, make_assistant).ingest([docs]).added == ["knobs.md"]

    _write_version(knobs, "v1")
    _reopen(settings, make_assistant)  # this process holds nothing open while the other writes
    assert _ingest_killed_at(point, data, docs) == -signal.SIGKILL
    a = _reopen(settings, make_assistant)
    expected = "v1" if WRITE_POINTS.index(point) >= NEW_VISIBLE_FROM else "v0"
    assert _visible(a) == ({expected}, N), f"killed at {point!r}"

    # Every point leaves the document marked dirty: the next ingest repairs exactly it, and indexes
    # the file again when its new version never became current.
    report = a.ingest([docs])
    assert report.repaired == 1, (point, report)
    assert (report.unchanged if expected == "v1" else report.updated) == ["knobs.md"], (point, report)
    assert _visible(a) == ({"v1"}, N)
    assert a.store.count() == 4 * N, "no orphan records are left"
    assert a.stats()["files"] == 1 and a.store.repair() == 0


@pytest.mark.slow
def test_sigkill_during_a_repair_is_repaired_by_the_next_ingest(tmp_path, make_assistant):
    """A kill during the repair of an earlier kill: the repair is idempotent, and the one after it
    finishes the job."""
    data, docs = tmp_path / "data", tmp_path / "docs"
    docs.mkdir()
    settings = Settings(data_dir=data)
    knobs = docs / "knobs.md"
    _write_version(knobs, "v0")
    _reopen(settings, make_assistant).ingest([docs])
    _write_version(knobs, "v1")
    _reopen(settings, make_assistant)
    assert _ingest_killed_at("bumped", data, docs) == -signal.SIGKILL  # v1 current, v0 still stored
    assert _ingest_killed_at("repairing", data, docs) == -signal.SIGKILL  # v0 deleted, mark not cleared
    a = _reopen(settings, make_assistant)
    assert _visible(a) == ({"v1"}, N)
    report = a.ingest([docs])
    assert report.repaired == 1 and report.unchanged == ["knobs.md"], report
    assert a.store.count() == 4 * N and a.store.repair() == 0
