"""What a console log says about how its run ended, beside its readings: an MLPerf run that reached
its quality target, or an early stop whose patience ran out (Run.stopped). MLPerf's logs also say
what their `eval_accuracy` measures, when it is not an accuracy (RunEnd.rename)."""

from __future__ import annotations

import dataclasses
import math
import re

from assistant.runs.parse.table import Columns, Run

# MLPerf result logs name every benchmark's quality metric `eval_accuracy`; for these it is a
# lower-is-better reading (the benchmarks' published targets: a word error rate, a log-perplexity,
# an evaluation loss), named in `:::MLLOG {"key": "submission_benchmark", "value": "rnnt"}`.
_BENCHMARK = re.compile(r'"key":\s*"submission_benchmark",\s*"value":\s*"([\w.-]+)"')
MLPERF_QUALITY = {
    "rnnt": "wer", "gpt3": "log_perplexity", "llama31_8b": "log_perplexity",
    "llama31_405b": "log_perplexity", "llama2_70b_lora": "loss",
}  # fmt: skip
# ...and each ends its run when the quality target is reached: `"key": "run_stop", … "status": "success"`
_TARGET_REACHED = re.compile(r'"key":\s*"run_stop".*"status":\s*"success"')
# ...or an early stop's message: Keras' `Epoch 00018: early stopping`, Lightning's `Signaling Trainer
# to stop.`, torchkeras' `val_acc without improvement in 5 epoch, early stopping`, `Stopping the
# training, … no more patience`; not an EarlyStopping's `counter: 2 out of 3`, a setting or a flag
# (`early_stopping: true`, `'early_stop': False`, `--early_stopping 1`), nor `no early stopping`. It
# ends the run only when no reading follows it but a re-print of that run (RunEnd.finish): Spinning
# Up's `Early stopping at step 12 due to reaching max kl.` stops one epoch's updates.
_STOPPED_EARLY = re.compile(
    r"(?<![\w-])(?<!no )(?<!without )early[ _-]?stop(?:ping|ped)?\b"
    r"(?!['\"]?\s*(?:counter|patience|rounds|disabled|callback|[=:(]))"
    r"|\bstop(?:ping|ped)?\s+(?:the\s+)?training\b[^\n]{0,80}\bpatience\b|\bsignaling trainer to stop\b",
    re.IGNORECASE,
)


@dataclasses.dataclass
class RunEnd:
    """The ending signals seen so far in a console log, fed one segment at a time."""

    quality: str | None = None  # what an MLPerf log's `eval_accuracy` measures, when not an accuracy
    reached: bool = False
    stop_at: tuple[int, float] | None = None  # (rows, last epoch) when early stopping was last announced

    def feed(self, segment: str, read: bool, cols: Columns) -> None:
        if m := _BENCHMARK.search(segment):
            self.quality = MLPERF_QUALITY.get(m.group(1).lower(), self.quality)
        self.reached = self.reached or bool(_TARGET_REACHED.search(segment))
        if read and cols.n and _STOPPED_EARLY.search(segment):
            self.stop_at = (cols.n, cols.epoch[-1])

    def rename(self, values: dict[str, float]) -> None:
        """An MLPerf `eval_accuracy` under the name of what it measures."""
        if self.quality and "eval_accuracy" in values:
            values[f"eval_{self.quality}"] = values.pop("eval_accuracy")

    def finish(self, run: Run, cols: Columns) -> Run:
        if self.reached:
            return dataclasses.replace(run, stopped="target")
        return dataclasses.replace(run, stopped="early") if self._ended_by(cols) else run

    def _ended_by(self, cols: Columns) -> bool:
        """Whether an early stop announced when the table had `stop_at` rows ended the run read: no
        reading came after it, or only a re-print of that run (torchkeras' history table after its
        bars: its epochs start again and end where the announced run ended)."""
        if self.stop_at is None:
            return False
        rows, last_epoch = self.stop_at
        if rows == cols.n:
            return True
        if math.isnan(last_epoch):
            return False
        after = cols.epoch[rows:]
        return bool(after[0] <= last_epoch and after[-1] == last_epoch)
