"""A training run's log: read it (parse), judge its curves (detect), draw them (plot), and turn what
they show into a question for the documents (diagnose). Never imports web, cli or measure."""

from assistant.runs.detect import KINDS, Finding, Thresholds, detect
from assistant.runs.parse import Run, RunParseError, parse_run

__all__ = ["KINDS", "Finding", "Run", "RunParseError", "Thresholds", "detect", "parse_run"]
