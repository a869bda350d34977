"""Logs whose metric words are Chinese or Japanese (`训练损失: 0.52`, `検証 正解率 0.81`): read as their
English (`train loss`, `validation accuracy`), the stages and the epoch counter included."""

from __future__ import annotations

from assistant.runs import detect, parse_run
from assistant.runs.parse.cjk import translated
from tests.run_helpers import falling


def test_chinese_metric_words_name_the_readings_and_their_stage():
    train = falling(12, 1.2, 0.2)
    val = [0.9 - 0.05 * e if e < 6 else 0.6 + 0.04 * (e - 6) for e in range(12)]
    text = "\n".join(
        f"轮次 {e + 1} 训练损失: {t:.4f}, 验证集损失: {v:.4f}, 验证准确率: {0.6 + e / 40:.3f}"
        for e, (t, v) in enumerate(zip(train, val, strict=True))
    )
    run = parse_run(text)
    assert {"train_loss", "val_loss", "val_acc"} <= set(run.table)
    assert run.table["epoch"].tolist() == list(range(1, 13))
    assert "overfitting" in {f.kind for f in detect(run)}


def test_japanese_metric_words_and_a_line_of_ascii_left_as_it_is():
    losses = enumerate(falling(10), 1)
    text = "\n".join(f"エポック {e}: 学習 損失 {t:.4f} 検証 正解率 {0.7 + e / 100:.3f}" for e, t in losses)
    run = parse_run(text)
    assert {"train_loss", "val_acc"} <= set(run.table) and run.table["epoch"].iloc[-1] == 10
    line = "epoch 3 train_loss=0.52 val_loss=0.61"
    assert translated(line) is line
    # words that are no metric stay as they are: `模型` (model), `数据` (data)
    assert translated("模型 数据 loss: 0.5") == "模型 数据 loss: 0.5"


def test_full_width_punctuation_and_a_word_that_is_no_metric():
    text = "\n".join(
        f"轮次 {e}，训练损失：{t:.4f}，验证损失：{t + 0.1:.4f}" for e, t in enumerate(falling(8), 1)
    )
    assert {"train_loss", "val_loss"} <= set(parse_run(text).table)
    # `混合精度` (mixed precision) is no accuracy
    assert "accuracy" not in translated("使用混合精度 16 位")
