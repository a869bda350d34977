"""Errors a generation can end with that the user should read in the chat (the app keeps serving)."""


class LLMError(RuntimeError):
    """A generation could not finish; the message says why and what to do."""


class LLMOutOfMemoryError(LLMError):
    """The accelerator ran out of memory during one generation; the engine keeps serving."""
