"""The byte stream under every JSON reader: ijson's events with Python's bare NaN and Infinity
accepted (rewritten as strings on the way in, chunk by chunk) and the nesting capped before the
parser's own bookkeeping can grow with it."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from typing import IO, Any

import ijson

from assistant.runs.parse.table import Limits, RunParseError

_CHUNK = 1 << 16
_SPECIAL = {"nan", "-nan", "inf", "-inf", "infinity", "-infinity"}
_DEPTH_BUFFER = 2048  # bytes the nesting check's parser takes at a time
_BARE = re.compile(rb"-?Infinity|NaN")
# a JSON string (kept as it is) or a bare non-standard number (quoted)
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*(?:"|\Z)|(-?Infinity|NaN)')  # a string may run past the chunk
_STRING_REST = re.compile(rb'(?:[^"\\]|\\.)*"')  # the rest of a string the chunk starts inside
_UNESCAPED_QUOTE = re.compile(rb'(?<!\\)(?:\\\\)*"')  # a quote after an even run of backslashes


class _BareNumbers(io.RawIOBase):
    """A binary reader that rewrites bare NaN / Infinity / -Infinity as strings. Chunks without either
    word pass through untouched (the reader only tracks whether it ends inside a string, by counting
    quotes); a chunk with one is rewritten token by token from that state. A word cut by the end of a
    chunk waits for the next one."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.pending, self.out, self.eof, self.in_string = b"", b"", False, False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self.out and not self.eof:
            chunk = self.raw.read(_CHUNK)
            self.eof = not chunk
            data = self.pending + chunk
            end = len(data)
            while not self.eof and end and (data[end - 1 : end].isalpha() or data[end - 1 : end] == b"\\"):
                end -= 1  # a word (or a run of backslashes) cut in two: finish it with the next chunk
            data, self.pending = data[:end], data[end:]
            self.out = self._rewrite(data) if _BARE.search(data) else data
            self.in_string ^= _quotes(data) % 2 == 1

    def _rewrite(self, data: bytes) -> bytes:
        start = 0
        if self.in_string:  # finish the string the chunk starts inside, untouched
            m = _STRING_REST.match(data)
            if m is None:
                return data
            start = m.end()
        return data[:start] + _TOKEN.sub(lambda m: b'"%s"' % m[1] if m[1] else m[0], data[start:])

    def readinto(self, buffer: Any) -> int:
        self._fill()
        n = min(len(buffer), len(self.out))
        buffer[:n] = self.out[:n]
        self.out = self.out[n:]
        return n


def _quotes(data: bytes) -> int:
    """Quotes that open or close a string: those after an even number of backslashes (`\\"` is an
    escaped quote, `\\\\"` an escaped backslash and then a quote, `\\\\\\"` both escaped)."""
    return len(_UNESCAPED_QUOTE.findall(data))


def parser(opener: Callable[[], IO[bytes]]) -> IO[bytes]:
    return io.BufferedReader(_BareNumbers(opener()), _CHUNK)


def events(f: IO[bytes], limits: Limits) -> Iterator[tuple[str, str, Any]]:
    """ijson's (prefix, event, value) of a byte stream, bare NaN/Infinity accepted, nesting capped."""
    depth = 0
    # small parser buffers: ijson yields a buffer's events only once it has parsed all of them, and
    # the path it keeps per event grows with the depth, so a buffer of `[[[[…` must stay small
    stream = io.BufferedReader(_BareNumbers(f), _CHUNK)
    for prefix, event, value in ijson.parse(stream, buf_size=_DEPTH_BUFFER, use_float=True):
        if event == "start_map" or event == "start_array":
            depth += 1
            if depth > limits.max_depth:
                raise RunParseError(
                    f"the JSON is nested more than {limits.max_depth} levels deep (json_max_depth): "
                    "a training log is a list of flat records"
                )
        elif event == "end_map" or event == "end_array":
            depth -= 1
        yield prefix, event, value


def spells_nan(value: Any) -> bool:
    """A string that is NaN or inf as Python's json (quoted by this stream) and some loggers write it."""
    return isinstance(value, str) and value.strip().lower() in _SPECIAL
