"""What the knowledge layer refuses, in a module of its own so that callers (the CLI's error exit)
can name these without importing Chroma, the embedder or the splitters."""

from __future__ import annotations


class LoadError(Exception):
    """A file that cannot be ingested; the message names the file and the reason."""


class ModelHashError(RuntimeError):
    """A model file's sha256 is not the published one: the file is corrupt or was replaced."""


class IndexMismatchError(RuntimeError):
    """The stored index was built with another embedder or chunker."""
