"""A log cannot take the server down: memory for reading a log stays within a small multiple of its
size whatever its shape, and every limit (metric names, JSON nesting, line length, size) ends in a
clear message or a note, never in a crash. Memory is measured with tracemalloc (numpy and pandas
report their buffers to it), which counts allocations, not time: the figures do not depend on load.
"""

from __future__ import annotations

import json
import math
import random
import tracemalloc
from pathlib import Path

import pytest

from assistant.measure.parse_bench import SHAPES, long_line
from assistant.runs import detect
from assistant.runs.findings import KINDS
from assistant.runs.parse import Limits, RunParseError, parse_run
from assistant.runs.parse.table import MIN_CELLS


def peak_bytes(fn):
    tracemalloc.start()
    try:
        result = fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, peak


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_log_inventing_a_metric_name_per_line_costs_what_its_values_cost(tmp_path):
    """The reported attack: 16,000 lines `step i loss_i=0.5` (394 KB) took 218 s and 6.4 GB. Now it
    costs a small multiple of its size, and is refused: no name is logged twice, so there is no curve."""
    text = "".join(f"step {i} loss_{i}=0.5\n" for i in range(16_000))
    path = write(tmp_path, "explode.log", text)
    refused, peak = peak_bytes(lambda: pytest.raises(RunParseError, parse_run, path))
    assert "no training curve" in str(refused.value)
    assert peak < 4 * len(text) + 2_000_000, peak
    _, peak = peak_bytes(lambda: pytest.raises(RunParseError, parse_run, text))  # pasted, the same
    assert peak < 6 * len(text) + 2_000_000
    # 300 names, each on many lines: the first run_max_metrics are read, the rest skipped with a note
    text = "".join(f"step {i} loss_{i % 300}={1 / (1 + i):.5f}\n" for i in range(16_000))
    run, peak = peak_bytes(lambda: parse_run(write(tmp_path, "many.log", text)))
    assert len(run.metrics) <= Limits().max_metrics and any("run_max_metrics" in n for n in run.notes)
    assert peak < 6 * len(text) + 2 * 8 * MIN_CELLS, peak  # the table may always take MIN_CELLS cells


def test_json_documents_are_streamed_not_loaded_whole(tmp_path):
    """trainer_state.json and a Keras history: memory a small multiple of the file (json.loads of the
    same documents takes 20-30x)."""
    n = 30_000
    state = {
        "best_metric": None,
        "log_history": [
            {
                "epoch": i / 1000,
                "step": i,
                "loss": 2.0 / (1 + i / 1000),
                "learning_rate": 1e-4,
                "grad_norm": 1.5,
            }
            for i in range(n)
        ]
        + [{"epoch": 30.0, "step": n, "train_runtime": 100.0, "train_loss": 0.9}],
    }
    path = write(tmp_path, "trainer_state.json", json.dumps(state))
    run, peak = peak_bytes(lambda: parse_run(path))
    assert run.fmt == "trainer-state" and len(run) == n
    assert peak < 3 * path.stat().st_size, (peak, path.stat().st_size)

    history = {
        "loss": [1 / (i + 1) for i in range(100_000)],
        "val_loss": [1.1 / (i + 1) for i in range(100_000)],
    }
    path = write(tmp_path, "history.json", json.dumps(history))
    run, peak = peak_bytes(lambda: parse_run(path))
    assert run.fmt == "keras-history" and len(run) == 100_000
    assert peak < 10 * path.stat().st_size, (peak, path.stat().st_size)


def test_a_bare_nan_as_pythons_json_writes_it_is_a_logged_nan(tmp_path):
    """json.dumps writes a NaN loss as a bare NaN, which strict JSON refuses: it reads as a blow-up."""
    records = [{"epoch": i + 1, "step": (i + 1) * 10, "loss": 1.0 / (i + 1)} for i in range(10)]
    records += [{"epoch": 11, "step": 110, "loss": math.nan}, {"epoch": 12, "step": 120, "loss": math.inf}]
    text = json.dumps({"log_history": records, "note": "a string that says NaN, Infinity"})
    assert "NaN" in text
    run = parse_run(write(tmp_path, "trainer_state.json", text))
    assert math.isinf(run.table["train_loss"].iloc[-1]) and math.isinf(run.table["train_loss"].iloc[-2])
    assert detect(run)[0].kind == "diverged"


def test_deep_nesting_is_refused_before_it_costs_anything(tmp_path):
    path = write(tmp_path, "deep.json", "[" * 200_000 + "]" * 200_000)
    (_, peak) = peak_bytes(lambda: pytest.raises(RunParseError, parse_run, path))
    assert peak < 20_000_000, peak
    with pytest.raises(RunParseError, match="nested more than 32 levels"):
        parse_run(path)
    with pytest.raises(RunParseError, match="nested"):
        parse_run('{"log_history": ' + "[" * 100 + "]" * 100 + "}")
    # a JSON-lines log with one deep line: that line is skipped, the rest is read
    lines = [json.dumps({"epoch": i, "loss": 1 / i}) for i in range(1, 9)] + ["{" + '"a":' * 50_000]
    run = parse_run(write(tmp_path, "deep.jsonl", "\n".join(lines)))
    assert len(run) == 8 and any("not JSON" in n for n in run.notes)


def test_an_overlong_line_is_skipped_with_a_note(tmp_path):
    lines = [json.dumps({"epoch": i, "loss": 1 / i}) for i in range(1, 21)]
    text = "\n".join(lines[:10] + ['{"blob": "' + "x" * 3_000_000 + '"}'] + lines[10:]) + "\n"
    path = write(tmp_path, "train.jsonl", text)
    run, peak = peak_bytes(lambda: parse_run(path))
    assert len(run) == 20 and any("longer than" in n for n in run.notes)
    assert peak < 1_500_000, peak  # the 3 MB line is never held whole


def test_a_csv_reads_only_the_columns_it_can_use_a_chunk_at_a_time(tmp_path):
    names = [f"metric_{i}_loss" for i in range(300)] + [f"note_{i}" for i in range(300)]
    rows = [",".join(["epoch", *names])] + [",".join([str(e), *(["0.5"] * 600)]) for e in range(2_000)]
    path = write(tmp_path, "wide.csv", "\n".join(rows) + "\n")
    run, peak = peak_bytes(lambda: parse_run(path))
    assert len(run.metrics) <= 64 and any("run_max_metrics" in n for n in run.notes)
    assert peak < 2 * path.stat().st_size, (peak, path.stat().st_size)


def test_limits_come_from_settings():
    from assistant.settings import Settings

    limits = Limits.from_settings(Settings(run_max_mb=1, run_max_metrics=7, json_max_depth=5))
    assert (limits.max_bytes, limits.max_metrics, limits.max_depth) == (1_000_000, 7, 5)
    with pytest.raises(RunParseError, match="nested more than 5"):
        parse_run('[[[[[[{"loss": 1}]]]]]]', limits=limits)
    many = "\n".join(f"epoch {i} " + " ".join(f"m{j}_f1={j}" for j in range(20)) for i in range(1, 9))
    assert len(parse_run(many, limits=limits).metrics) == 7


def test_a_console_log_whose_lines_start_with_a_tag_is_not_taken_for_json():
    for tag in ("[train]", "[INFO]", "[2026-11-02 10:00:01]"):
        text = "\n".join(f"{tag} epoch {e} | step {e * 5} | loss {1 / e:.3f}" for e in range(1, 9))
        run = parse_run(text)
        assert run.fmt == "console" and len(run) == 8, tag


def test_an_integer_too_large_for_a_float_is_an_overflowed_loss_not_a_crash():
    big = "1" + "0" * 400  # JSON and Python literals hold exact integers; float() refuses this one
    for text in (
        f'{{"loss": {big}, "epoch": 1}}\n{{"loss": 0.5, "epoch": 2}}\n{{"loss": 0.4, "epoch": 3}}',
        f"{{'loss': {big}, 'epoch': 1}}\n{{'loss': 0.5, 'epoch': 2}}\n{{'loss': 0.4, 'epoch': 3}}",
        f'epoch 1 {{"loss": {big}}}\nepoch 2 {{"loss": 0.5}}\nepoch 3 {{"loss": 0.4}}',
    ):
        found = detect(parse_run(text))
        assert found[0].kind == "diverged" and "NaN or infinite" in found[0].evidence


def test_a_reading_near_the_float_limit_and_a_header_without_values_are_no_crash():
    # a spike near 1e308 among small readings: its curve's noise in decades overflowed a power
    found = detect(parse_run("loss 2,\nloss 1e308\nloss 1\nloss 1"))
    assert found and all(f.kind in KINDS for f in found)
    # a W&B-looking header (`<run> - <metric>`) that pandas names otherwise was looked up by name
    with pytest.raises(RunParseError, match="none has a number"):
        parse_run("INFO - val_loss , l_pix\n,")


def test_names_are_found_where_a_search_from_every_start_finds_them():
    """On a line with a long run of name characters, the console reader's name patterns are tried
    from each run's first start only (linear in the line's length; every start took the square of
    it): the same matches, on random lines built from the pieces those patterns care about, half of
    them holding such a run."""
    from assistant.runs.parse.lines import PAIR, named_matches, pairs
    from assistant.runs.parse.readings import _BARE, _BARE_START

    pieces = [*"aZk_-./()=: \t1.5e", " is ", "loss", "acc@1", "ppl", "train ", "_loss ", "nan", "0.3"]
    pieces += ["\u212a", "\u017f", "val ", "tensor(", "(seg loss 0.5)", "%|"]  # K and s to IGNORECASE
    rnd = random.Random(20261204)
    compared = 0
    for _ in range(20_000):
        line = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 30)))
        if rnd.random() < 0.5:  # a run of 128 or more
            at = rnd.randint(0, len(line))
            run = "".join(rnd.choice("aZ_-./()9") for _ in range(rnd.randint(128, 200)))
            line = line[:at] + run + rnd.choice(["", " loss: 0.3", "_loss 0.3"]) + line[at:]
        for full, linear in (
            (PAIR.finditer(line), pairs(line)),
            (_BARE.finditer(line), named_matches(_BARE, _BARE_START, line, not_in_last="/()")),
        ):
            expected = [(m.span(), m.groups()) for m in full]
            assert [(m.span(), m.groups()) for m in linear] == expected, line
            compared += bool(expected)
    assert compared > 5_000  # the lines held names to find, not only noise


@pytest.mark.parametrize("unit", list(SHAPES))
def test_the_longest_line_read_of_a_shape_that_was_quadratic_is_read_past(unit):
    """Lines of these shapes once took the square of their length to read (a 256 KB one: minutes;
    `assistant bench parse` prints the times, linear now); the readings around them are read."""
    line = long_line(unit, Limits().max_line_bytes - 16)
    run = parse_run(f"{line}\nepoch 1 loss 0.5\nepoch 2 loss 0.4\n{line}\nepoch 3 loss 0.3\n")
    read = list(run.table["train_loss"].dropna())
    assert read[-1] == 0.3 and 0.5 in read  # read past both (`loss 1 …` is itself a reading)
