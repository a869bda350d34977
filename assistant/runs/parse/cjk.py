"""Metric words of logs printed in Chinese or Japanese, put into the English the names are read in.

A script printing `训练损失: 0.52, 验证准确率: 0.81` (or `学習 損失 0.52`, `検証 正解率 0.81`) names its
readings in words the vocabulary (names.py) does not hold: the line held no reading. Each word is
replaced by the English one it means, set apart by spaces (`训练损失` -> ` train  loss `), so that
`train loss: 0.52` reads as any English line does. A line of ASCII alone is returned as it is.
"""

from __future__ import annotations

import re

# longest first: `验证集` before `验证`, `学習率` before `学習` (`精度` is not here: in Chinese it is as
# often numeric precision, `混合精度` mixed precision, as accuracy)
_WORDS = {
    # Chinese (simplified and traditional)
    "验证集": "validation",
    "驗證集": "validation",
    "测试集": "test",
    "測試集": "test",
    "训练集": "train",
    "訓練集": "train",
    "准确率": "accuracy",
    "準確率": "accuracy",
    "正确率": "accuracy",
    "正確率": "accuracy",
    "学习率": "lr",
    "學習率": "lr",
    "损失值": "loss",
    "損失值": "loss",
    "损失": "loss",
    "損失": "loss",  # Japanese too
    "验证": "validation",
    "驗證": "validation",
    "测试": "test",
    "測試": "test",
    "训练": "train",
    "訓練": "train",
    "轮次": "epoch",
    # Japanese
    "正解率": "accuracy",
    "学習": "train",
    "検証": "validation",
    "学習率": "lr",
    "テスト": "test",
    "エポック": "epoch",
}
_WORD = re.compile("|".join(sorted(map(re.escape, _WORDS), key=len, reverse=True)))


# full-width punctuation, as Chinese and Japanese text prints it: `训练损失：0.52，验证损失：0.61`
_PUNCTUATION = str.maketrans({"：": ":", "，": ",", "；": ";", "（": "(", "）": ")", "＝": "="})


def translated(line: str) -> str:
    """The line with the metric words above in English, its full-width punctuation in ASCII."""
    if line.isascii():
        return line
    return _WORD.sub(lambda m: f" {_WORDS[m.group(0)]} ", line.translate(_PUNCTUATION))
